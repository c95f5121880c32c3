"""Humanloop prompts with ``template_language: jinja``, rendered by the sandboxed Jinja renderer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from prompt_middleware import PromptMiddleware, Settings
from prompt_middleware.errors import PromptStoreUnavailable
from prompt_middleware.prepare import prepare_prompt
from prompt_middleware.prompts import PromptQuery
from prompt_middleware.render import PreparedPrompt
from prompt_middleware.stores.humanloop import HumanloopStore
from tests.conftest import RecordingApp
from tests.fakes.humanloop import FakeHumanloop

API_KEY = "hl_sk_0123456789abcdef-very-secret"
URL = "/v1/chat/completions"
SYSTEM = "You support {{ product | upper }}.{% if vip %} Be kind.{% endif %}"


@pytest.fixture
def fake() -> FakeHumanloop:
    return FakeHumanloop(api_key=API_KEY)


@pytest.fixture
async def store(fake: FakeHumanloop) -> AsyncIterator[HumanloopStore]:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.app)) as client:
        yield HumanloopStore(
            base_url="http://humanloop.test/v5", api_key=API_KEY, retry_backoff=0.0, client=client
        )


async def send(store: HumanloopStore, app: RecordingApp, body: dict[str, Any]) -> httpx2.Response:
    middleware = PromptMiddleware(app, Settings(), stores={"humanloop": store})
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=middleware), base_url="http://test"
        ) as client:
            return await client.post(URL, json=body)
    finally:
        await middleware.engine.aclose()


async def test_a_jinja_chat_prompt_is_rendered(fake: FakeHumanloop, store: HumanloopStore) -> None:
    fake.add_prompt(
        "support",
        [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "{% for q in questions %}- {{ q }}\n{% endfor %}"},
        ],
        template_language="jinja",
    )
    app = RecordingApp()
    variables = {"product": "acme", "vip": True, "questions": ["Why?", "System: how?"]}
    body = {"model": "humanloop/x", "prompt_id": "support", "prompt_variables": variables}
    response = await send(store, app, body)
    assert response.status_code == 200, response.text
    assert app.last.json()["messages"] == [
        {"role": "system", "content": "You support ACME. Be kind."},
        {"role": "user", "content": "- Why?\n- System: how?\n"},
    ]


async def test_a_jinja_text_prompt_is_rendered(fake: FakeHumanloop, store: HumanloopStore) -> None:
    fake.add_prompt("tagline", "A tagline for {{ product | title }}", template_language="jinja")
    app = RecordingApp()
    body = {"model": "humanloop/x", "prompt_id": "tagline", "prompt_variables": {"product": "a b"}}
    await send(store, app, body)
    assert app.last.json()["messages"] == [{"role": "user", "content": "A tagline for A B"}]


async def test_plain_jinja_keeps_the_plain_path_and_jinja_semantics(
    fake: FakeHumanloop, store: HumanloopStore
) -> None:
    fake.add_prompt("p", [{"role": "user", "content": "Hi {{ name }}!"}], template_language="jinja")
    prompt = await store.get_prompt(PromptQuery("p"))
    assert prompt.template_language == "jinja"
    assert isinstance(prepare_prompt(prompt), PreparedPrompt)
    app = RecordingApp()
    await send(store, app, {"model": "humanloop/x", "prompt_id": "p"})
    # Jinja writes an undefined variable as nothing (Langfuse keeps "{{ name }}")
    assert app.last.json()["messages"] == [{"role": "user", "content": "Hi !"}]


async def test_the_default_template_language_is_not_jinja(
    fake: FakeHumanloop, store: HumanloopStore
) -> None:
    fake.add_prompt("p", "Write {% raw %} as is, {{name}}")
    app = RecordingApp()
    body = {"model": "humanloop/x", "prompt_id": "p", "prompt_variables": {"name": "Ada"}}
    await send(store, app, body)
    assert app.last.json()["messages"] == [
        {"role": "user", "content": "Write {% raw %} as is, Ada"}
    ]


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{% if x %}never closed", "line 1: Unexpected end of template"),
        (
            [{"role": "user", "content": "ok"}, {"role": "user", "content": "\n{{ x.__class__ }}"}],
            "line 2: the sandbox forbids access to attribute '__class__'",
        ),
    ],
)
async def test_a_template_that_cannot_be_served_is_unavailable(
    fake: FakeHumanloop, store: HumanloopStore, template: Any, reason: str
) -> None:
    fake.add_prompt("p", template, template_language="jinja")
    with pytest.raises(PromptStoreUnavailable, match="invalid prompt for 'p") as caught:
        await store.get_prompt(PromptQuery("p"))
    assert reason in caught.value.message
