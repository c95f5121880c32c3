"""Engine test fixtures: a memory store of sample prompts, engines closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
import structlog

from prompt_middleware import Settings
from prompt_middleware.cache import PromptCache
from prompt_middleware.engine import RewriteEngine
from prompt_middleware.engine.plan import PromptPlan
from tests.conftest import ClientFactory
from tests.engine.helpers import EngineFactory
from tests.fakes.memory import MemoryStore, chat_prompt, text_prompt


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(
        chat_prompt("chat", [("system", "Be brief."), "messages"]),
        chat_prompt("middle", [("system", "Be brief."), "messages", ("user", "end")]),
        chat_prompt("plain", [("system", "Be brief."), ("user", "Go.")]),
        text_prompt("greeting", "v1 {{name}}", config={"model": "gpt-4o"}),
        text_prompt("greeting", "v2 {{name}}", version=2, labels=("staging",)),
        text_prompt("echo", "{{a}}"),
    )


@pytest.fixture
def client(make_client: ClientFactory, store: MemoryStore) -> httpx2.AsyncClient:
    return make_client(Settings(default_store="mem"), stores={"mem": store})


@pytest.fixture
async def make_engine(store: MemoryStore) -> AsyncIterator[EngineFactory]:
    """``make_engine(settings, stores=..., cache=...)``: an engine closed after the test."""
    engines: list[RewriteEngine] = []

    def factory(
        settings: Settings | None = None,
        *,
        stores: dict[str, Any] | None = None,
        cache: PromptCache[PromptPlan] | None = None,
    ) -> RewriteEngine:
        engine = RewriteEngine(
            settings or Settings(default_store="mem"),
            stores=stores if stores is not None else {"mem": store},
            cache=cache,
        )
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        await engine.aclose()


@pytest.fixture
def structlog_config() -> Iterator[None]:
    """Put back whatever structlog configuration the test changes."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
