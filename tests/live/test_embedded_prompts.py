"""A Langfuse prompt may embed another (``@@@langfusePrompt:…@@@``, resolved by Langfuse when it
serves the prompt): after a prompt-version webhook every other cached Langfuse prompt counts as
expired, so one that embeds the changed prompt follows within one background refresh and no
request waits for it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx2
import pytest

from prompt_middleware import PromptMiddleware, Secret, Settings
from tests.conftest import RecordingApp
from tests.fakes.langfuse_webhooks import WebhookLangfuse
from tests.fakes.server import serve_in_background

PUBLIC, SECRET = "pk-lf-embed", "sk-lf-embed"
WEBHOOK_SECRET = "lf-whsec_" + "e3" * 32


@pytest.fixture
async def langfuse() -> AsyncIterator[tuple[WebhookLangfuse, str]]:
    fake = WebhookLangfuse(public_key=PUBLIC, secret_key=SECRET)
    fake.add_prompt("tone", "Be kind.", labels=["production"])
    fake.add_prompt(
        "support/answer",
        "@@@langfusePrompt:name=tone|label=production@@@ Answer {{question}}",
        labels=["production"],
    )
    fake.add_prompt("greeting", "Hello.", labels=["production"])
    async with serve_in_background(fake.app) as url:
        yield fake, url


async def ask(http: httpx2.AsyncClient, app: RecordingApp, prompt: str) -> tuple[str, str]:
    """The text the upstream got for ``prompt``, and how the cache served it."""
    body = {
        "model": "langfuse/gpt-4o",
        "prompt_id": prompt,
        "prompt_variables": {"question": "why?"},
    }
    response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return app.last.json()["messages"][0]["content"], response.headers["x-prompt-cache"]


async def test_a_prompt_embedding_the_changed_one_follows_in_the_background(
    langfuse: tuple[WebhookLangfuse, str],
) -> None:
    fake, url = langfuse
    app = RecordingApp()
    settings = Settings(
        langfuse_public_key=PUBLIC,
        langfuse_secret_key=Secret(SECRET),
        langfuse_base_url=url,
        langfuse_webhook_secret=Secret(WEBHOOK_SECRET),
    )
    middleware = PromptMiddleware(app, settings)
    transport = httpx2.ASGITransport(app=middleware)
    async with httpx2.AsyncClient(transport=transport, base_url="http://app") as http:
        assert await ask(http, app, "support/answer") == ("Be kind. Answer why?", "miss")
        assert await ask(http, app, "tone") == ("Be kind.", "miss")
        assert await ask(http, app, "greeting") == ("Hello.", "miss")

        fake.add_prompt("tone", "Be brief.")
        [delivery, _] = fake.move_label("tone", "production", 2)
        headers = fake.webhook_headers(WEBHOOK_SECRET, delivery, int(time.time()))
        answer = await http.post("/webhooks/langfuse", content=delivery, headers=headers)
        assert answer.json()["prompt_id"] == "tone"

        # The changed prompt is fetched before it is served; the embedding one is served at
        # once from its old copy while one refresh runs.
        assert await ask(http, app, "support/answer") == ("Be kind. Answer why?", "stale")
        assert await ask(http, app, "tone") == ("Be brief.", "miss")
        await middleware.engine.cache.drain()
        assert await ask(http, app, "support/answer") == ("Be brief. Answer why?", "hit")
        assert (fake.fetches("support/answer"), fake.fetches("tone")) == (2, 2)
        # Every other Langfuse prompt counts as expired too: refreshed once, never waited for.
        assert await ask(http, app, "greeting") == ("Hello.", "stale")
        await middleware.engine.cache.drain()
        assert await ask(http, app, "greeting") == ("Hello.", "hit")
        assert fake.fetches("greeting") == 2
    await middleware.aclose()
