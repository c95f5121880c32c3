"""A client that leaves cancels its upstream request; a quick answer is never watched."""

from __future__ import annotations

import asyncio
import json

import pytest
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prompt_middleware.handoff import WAITED_SCOPE_KEY
from prompt_middleware.sidecar.forwarder import Forwarder
from prompt_middleware.sidecar.forwarder import app as app_module
from prompt_middleware.sidecar.forwarder import exchange as exchange_module
from tests.fakes.upstream import FakeUpstream
from tests.sidecar.forwarder.helpers import (
    CHAT,
    SAFETY,
    FakeLoop,
    call,
    forwarding,
    scope_for,
    settings_for,
)


async def test_client_leaving_mid_stream_cancels_the_upstream_request(
    fake: FakeUpstream, upstream: str
) -> None:
    fake.gate = asyncio.Event()  # never set: the stream would go on forever
    with structlog.testing.capture_logs() as logs:
        async with forwarding(settings_for(upstream)) as (client, _):
            request = client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True})
            async with asyncio.timeout(SAFETY):
                async with request as response:
                    assert b'"role":"assistant"' in await anext(response.aiter_raw())
                # Leaving the block closed the unfinished response, and its connection.
                await fake.stream_cancelled.wait()
            assert fake.open_streams == 0
            assert fake.completed == 0
            assert any(log["event"] == "client_disconnected" for log in logs)
            # The forwarder still works, on a new upstream connection: the old one was closed.
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    assert fake.requests[0].client != fake.requests[1].client


async def test_client_leaving_before_the_response_cancels_the_upstream_request(
    fake: FakeUpstream, upstream: str
) -> None:
    fake.hold_headers = asyncio.Event()  # never set
    async with forwarding(settings_for(upstream)) as (client, _):
        waiting = asyncio.create_task(client.post("/v1/chat/completions", json=CHAT))
        async with asyncio.timeout(SAFETY):
            await fake.request_received.wait()
            waiting.cancel()  # the client gives up and closes its connection
            await fake.stream_cancelled.wait()
    assert waiting.cancelled()
    assert fake.cancelled == 1


async def test_a_quick_answer_starts_no_watcher(
    fake: FakeUpstream, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched: list[object] = []

    async def recording_watch(receive: Receive, exchange: object) -> None:
        watched.append(exchange)

    monkeypatch.setattr(exchange_module, "_watch_disconnect", recording_watch)
    monkeypatch.setattr(app_module, "_WATCH_AFTER_SECONDS", 3600.0)
    async with forwarding(settings_for(upstream)) as (client, forwarder):
        for _ in range(3):
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        queue = forwarder._watching  # private: the queue under test has no public view
        assert queue is not None
        # Each exchange waits in the queue, held weakly: one that is over is freed at once,
        # with its scope, body and span (when it falls due, it is skipped).
        assert len(queue) == 3
        assert all(exchange() is None for _, exchange in queue._pending)
    assert watched == []
    assert len(queue) == 0  # closing the forwarder dropped them and their timer


def test_exchanges_are_watched_when_due_and_only_if_still_going() -> None:
    loop = FakeLoop()
    queue = exchange_module.WatchQueue(loop, 0.04)  # type: ignore[arg-type]
    watched: list[str] = []

    class Exchange:
        def __init__(self, name: str) -> None:
            self.name = name
            self.over = False

        def watch(self) -> None:
            watched.append(self.name)

    first, second, third, fourth = (Exchange(n) for n in ("first", "second", "third", "4th"))
    queue.add(first)  # type: ignore[arg-type]
    loop.now += 0.001
    queue.add(second)  # type: ignore[arg-type]
    loop.now += 0.001
    queue.add(third)  # type: ignore[arg-type]
    loop.now += 0.019
    queue.add(fourth)  # type: ignore[arg-type]
    assert len(loop.timers) == 1  # one timer for every exchange
    second.over = True  # answered within the delay
    loop.fire()  # at 100.04: only the first is due
    assert watched == ["first"]
    # The third is due at 100.042, but the timer waits a quarter of the delay: 100.05.
    assert loop.timers[0][0] == pytest.approx(100.05)
    loop.fire()
    assert watched == ["first", "third"]  # the second was over: never watched
    assert loop.timers[0][0] == pytest.approx(100.061)  # the fourth is due after the tick
    loop.fire()
    assert watched == ["first", "third", "4th"]
    assert loop.timers == []
    assert len(queue) == 0
    queue.add(Exchange("later"))  # type: ignore[arg-type]
    assert len(loop.timers) == 1  # an empty queue starts its timer again


async def test_a_request_that_waited_is_watched_at_once(
    fake: FakeUpstream, upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The middleware waited for a prompt store: the client may be gone, so the watcher runs
    # before the upstream call, whatever the delay for other requests.
    monkeypatch.setattr(app_module, "_WATCH_AFTER_SECONDS", 3600.0)
    fake.hold_headers = asyncio.Event()  # never set

    def waited(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, WAITED_SCOPE_KEY: True}, receive, send)

        return wrapped

    async with forwarding(settings_for(upstream), wrap=waited) as (client, _):
        waiting = asyncio.create_task(client.post("/v1/chat/completions", json=CHAT))
        async with asyncio.timeout(SAFETY):
            await fake.request_received.wait()
            waiting.cancel()
            await fake.stream_cancelled.wait()
    assert fake.cancelled == 1


async def test_a_client_gone_before_a_waited_request_is_sent_costs_no_upstream_call(
    fake: FakeUpstream, upstream: str
) -> None:
    # The client left while the middleware waited for the store: its disconnect is already
    # queued. The forwarder ends quietly (nothing raised to the server), with no upstream call.
    forwarder = Forwarder(settings_for(upstream))
    scope = {**scope_for("POST", "/v1/chat/completions", []), WAITED_SCOPE_KEY: True}
    messages: list[Message] = [
        {"type": "http.request", "body": json.dumps(CHAT).encode(), "more_body": False},
        {"type": "http.disconnect"},
    ]
    try:
        with structlog.testing.capture_logs() as logs:
            sent = await call(forwarder, scope, messages)
    finally:
        await forwarder.aclose()
    assert sent == []
    assert fake.requests == []
    assert [log["event"] for log in logs] == ["client_disconnected"]
