"""The canonical request report: a log line built only when it is logged, and the door told
when the rewrite waited for the store."""

from __future__ import annotations

import logging
from typing import Any

import httpx2
import pytest
import structlog

import prompt_middleware.engine
import prompt_middleware.handoff
import prompt_middleware.report
from prompt_middleware import PromptMiddleware, Settings
from prompt_middleware.engine import RewriteResult
from prompt_middleware.report import report_request
from tests.engine.helpers import (
    URL,
    EngineFactory,
    RecordingObserver,
    managed,
)
from tests.fakes.memory import MemoryStore

# --- 7. a log line is built only when it is logged -------------------------------------------


def report(result: RewriteResult, status: int, observer: RecordingObserver) -> None:
    """The canonical report of a request that spent 0.25 s in the middleware, 0.5 s in all."""
    report_request(
        route=URL,
        request_id=None,
        result=result,
        status=status,
        overhead_seconds=0.25,
        duration_seconds=0.5,
        observer=observer,
    )


async def test_with_info_off_nothing_is_built_but_the_observer_is_called(
    make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch, structlog_config: None
) -> None:
    def no_request_id() -> str:
        raise AssertionError("a request id was made for a line that is not logged")

    result = await managed(make_engine(), {"model": "m", "prompt_id": "greeting"})
    monkeypatch.setattr(prompt_middleware.report, "_new_request_id", no_request_id)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    observer = RecordingObserver()
    with structlog.testing.capture_logs() as logs:
        report(result, 200, observer)
    assert logs == []
    assert observer.requests == [(URL, 200, "miss", 0.25)]
    assert observer.fetches == []


async def test_with_info_on_the_line_names_the_prompt(
    make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine()
    body = {"model": "m", "prompt_id": "greeting", "prompt_label": "staging"}
    await managed(engine, body)
    result = await managed(engine, body)
    monkeypatch.setattr(prompt_middleware.report, "_new_request_id", lambda: "made-here")
    observer = RecordingObserver()
    with structlog.testing.capture_logs() as logs:
        report(result, 201, observer)
    assert logs == [
        {
            "event": "prompt_request",
            "log_level": "info",
            "route": URL,
            "request_id": "made-here",
            "model": "m",
            "status": 201,
            "overhead_ms": 250.0,
            "duration_ms": 500.0,
            "prompt": "greeting",
            "version": 2,
            "store": "mem",
            "cache": "hit",
        }
    ]
    assert observer.requests == [(URL, 201, "hit", 0.25)]


async def test_the_forwarder_is_told_when_the_rewrite_waited_for_the_store(
    store: MemoryStore,
) -> None:
    # A miss waited for the store (the client may have left meanwhile); a hit did not.
    seen: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        seen.append(scope.get(prompt_middleware.handoff.WAITED_SCOPE_KEY))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    middleware = PromptMiddleware(app, Settings(default_store="mem"), stores={"mem": store})
    body = {"model": "mem/gpt-4o", "prompt_id": "plain", "messages": []}
    transport = httpx2.ASGITransport(app=middleware)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        first = await client.post(URL, json=body)
        second = await client.post(URL, json=body)
        unmanaged = await client.post(URL, json={"model": "gpt-4o", "messages": []})
    assert [r.headers.get("x-prompt-cache") for r in (first, second, unmanaged)] == [
        "miss",
        "hit",
        None,
    ]
    assert seen == [True, None, None]
