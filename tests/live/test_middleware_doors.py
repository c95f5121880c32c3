"""The middleware answers ``POST /webhooks/langfuse`` itself (an app wrapped in process needs
no sidecar to stay live) and, with Redis, keeps its replicas together like the sidecar's."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx2
import pytest
from starlette.types import Message

from prompt_middleware import PromptMiddleware, Secret, Settings
from tests.conftest import RecordingApp
from tests.fakes.langfuse_webhooks import WebhookLangfuse
from tests.fakes.memory import MemoryStore, text_prompt
from tests.fakes.redis_server import RedisServer
from tests.live.conftest import FAN_OUT_SECONDS, MARGIN_SECONDS

WEBHOOK_SECRET = "lf-whsec_" + "7a" * 32
ASK = {"model": "langfuse/gpt-4o", "prompt_id": "support/answer", "messages": []}
EVENT = (
    b'{"id":"evt-1","timestamp":"2026-12-04T05:00:00.000Z","type":"prompt-version",'
    b'"apiVersion":"v1","action":"updated","prompt":{"name":"support/answer","version":2,'
    b'"labels":["production"]}}'
)


def langfuse() -> MemoryStore:
    return MemoryStore(text_prompt("support/answer", "one"))


def promote(store: MemoryStore) -> None:
    """Version 2 takes the production label, as in Langfuse (no one is told yet)."""
    store.prompts = [
        text_prompt("support/answer", "one", labels=()),
        text_prompt("support/answer", "two", version=2),
    ]


def signed(body: bytes = EVENT) -> dict[str, str]:
    return WebhookLangfuse.webhook_headers(WEBHOOK_SECRET, body, int(time.time()))


def client(middleware: PromptMiddleware) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=middleware), base_url="http://app")


async def version(http: httpx2.AsyncClient) -> str:
    response = await http.post("/v1/chat/completions", json=ASK)
    assert response.status_code == 200, response.text
    return response.headers["x-prompt-version"]


async def test_a_signed_delivery_is_answered_by_the_middleware_and_refetches() -> None:
    store, app = langfuse(), RecordingApp()
    settings = Settings(langfuse_webhook_secret=Secret(WEBHOOK_SECRET))
    middleware = PromptMiddleware(app, settings, stores={"langfuse": store})
    async with client(middleware) as http:
        assert await version(http) == "1"
        promote(store)
        assert await version(http) == "1"  # cached
        answer = await http.post("/webhooks/langfuse", content=EVENT, headers=signed())
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "invalidated"
        assert await version(http) == "2"
        assert store.total_calls == 2
        refused = await http.post("/webhooks/langfuse", content=EVENT, headers={})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_signature"
    assert [request.path for request in app.requests] == ["/v1/chat/completions"] * 3


@pytest.mark.parametrize(
    ("settings", "method"),
    [(Settings(), "POST"), (Settings(langfuse_webhook_secret=Secret(WEBHOOK_SECRET)), "GET")],
    ids=["no secret: the app's path", "not a POST"],
)
async def test_otherwise_the_path_is_the_apps(settings: Settings, method: str) -> None:
    app = RecordingApp()
    middleware = PromptMiddleware(app, settings, stores={"langfuse": langfuse()})
    async with client(middleware) as http:
        response = await http.request(method, "/webhooks/langfuse", content=EVENT)
    assert response.status_code == 200
    assert [request.path for request in app.requests] == ["/webhooks/langfuse"]
    assert middleware.live is None or method == "GET"


@contextlib.asynccontextmanager
async def running(middleware: PromptMiddleware) -> AsyncIterator[None]:
    """The middleware's lifespan, started and then shut down, as a server would."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    task = asyncio.create_task(middleware({"type": "lifespan"}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


async def test_with_redis_a_delivery_to_one_wrapped_app_reaches_the_other(
    redis_server: RedisServer,
) -> None:
    store = langfuse()  # one Langfuse, two replicas of the app
    settings = Settings(
        langfuse_webhook_secret=Secret(WEBHOOK_SECRET), redis_url=Secret(redis_server.url)
    )
    first = PromptMiddleware(RecordingApp(), settings, stores={"langfuse": store})
    second = PromptMiddleware(RecordingApp(), settings, stores={"langfuse": store})
    async with running(first), running(second), client(first) as one, client(second) as two:
        lives = [middleware.live for middleware in (first, second)]
        for live in lives:
            assert live is not None
            assert live.redis is not None
            async with asyncio.timeout(10):
                await live.redis.wait_subscribed()
        reached = asyncio.Event()
        assert lives[1] is not None
        lives[1].bus.subscribe(lambda invalidation: reached.set())
        assert (await version(one), await version(two)) == ("1", "1")
        promote(store)
        answer = await one.post("/webhooks/langfuse", content=EVENT, headers=signed())
        assert answer.status_code == 200, answer.text
        assert await version(one) == "2"  # applied before the answer
        async with asyncio.timeout(FAN_OUT_SECONDS + MARGIN_SECONDS):
            await reached.wait()  # over Redis, within one second
        assert await version(two) == "2"
