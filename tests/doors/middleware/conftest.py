"""The middleware in process over a recording app, with a store of a few prompts."""

from __future__ import annotations

import httpx2
import pytest

from prompt_middleware import Settings
from tests.conftest import ClientFactory
from tests.fakes.memory import MemoryStore, chat_prompt, text_prompt


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(
        text_prompt("greeting", "Hello {{ name }}, welcome to {{place}}."),
        chat_prompt(
            "support/answer",
            [("system", "You help with {{product}}."), "messages"],
            config={
                "model": "gpt-4o",
                "temperature": 0.2,
                "max_tokens": 300,
                "notes": "not a parameter",
            },
        ),
        chat_prompt("fewshot", [("system", "Answer."), "examples", ("user", "{{question}}")]),
        text_prompt("greeting", "Hi {{name}} (v2)", version=2, labels=("staging",)),
    )


@pytest.fixture
def client(make_client: ClientFactory, store: MemoryStore) -> httpx2.AsyncClient:
    return make_client(Settings(default_store="mem"), stores={"mem": store})
