"""PromptTransport under the real ``openai`` SDK, over a strict respx router on httpx2's pool
(``tests/fakes/mock_http.py``).

A request nobody mocked, or a mocked route nobody called, fails the test.
``route.calls.last.request`` is what really went out.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import openai
import pytest
import respx

from prompt_middleware import Settings
from prompt_middleware.stores.base import PromptStore
from prompt_middleware.transport import PromptTransport
from tests.doors.transport.helpers import UPSTREAM, MakeClient, sdk_http_client
from tests.fakes.memory import MemoryStore, chat_prompt, text_prompt
from tests.fakes.mock_http import mock_httpx2


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(
        text_prompt("greeting", "Hello {{name}}."),
        chat_prompt(
            "support/answer",
            [("system", "You help with {{product}}."), "messages"],
            config={"model": "gpt-4o", "temperature": 0.2, "notes": "not a parameter"},
        ),
    )


@pytest.fixture
def router() -> Iterator[respx.Router]:
    with mock_httpx2() as router:
        yield router


@pytest.fixture
async def make_client(
    router: respx.Router, store: MemoryStore
) -> AsyncIterator[Callable[..., openai.AsyncOpenAI]]:
    """``make_client(settings, base_url=...)``: the SDK over PromptTransport over respx."""
    clients: list[openai.AsyncOpenAI] = []

    def factory(
        settings: Settings | None = None,
        *,
        base_url: str = UPSTREAM,
        stores: dict[str, PromptStore] | None = None,
    ) -> openai.AsyncOpenAI:
        transport = PromptTransport(
            settings=settings or Settings(default_store="mem"),
            stores={"mem": store} if stores is None else stores,
        )
        client = openai.AsyncOpenAI(
            api_key="sk-test",
            base_url=base_url,
            max_retries=0,
            http_client=sdk_http_client(transport),
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
def client(make_client: MakeClient) -> openai.AsyncOpenAI:
    return make_client()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(("PROMPT_MIDDLEWARE_", "LANGFUSE_", "OPENAI_")):
            monkeypatch.delenv(name)
    (tmp_path / "support").mkdir()
    (tmp_path / "support" / "answer.yaml").write_text(
        "name: support/answer\n"
        "type: chat\n"
        "prompt:\n"
        "  - role: system\n"
        "    content: You answer questions about {{product}}.\n"
        "  - type: placeholder\n"
        "    name: messages\n"
        "config:\n"
        "  model: gpt-4o\n"
        "  temperature: 0.1\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PROMPT_MIDDLEWARE_PROMPTS_DIR", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", UPSTREAM)
    return tmp_path
