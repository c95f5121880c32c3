"""One canonical log line per request, through the middleware."""

from __future__ import annotations

import httpx2
import structlog

from tests.doors.middleware.helpers import URL, post


async def test_one_canonical_log_line_per_managed_request(client: httpx2.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        await post(
            client,
            {
                "model": "m",
                "prompt_id": "greeting",
                "prompt_variables": {"name": "I", "place": "J"},
            },
            headers={"x-request-id": "req-1"},
        )
    lines = [log for log in logs if log["event"] == "prompt_request"]
    assert len(lines) == 1
    line = lines[0]
    assert {
        k: line[k]
        for k in ("route", "prompt", "version", "cache", "model", "status", "request_id", "store")
    } == {
        "route": URL,
        "prompt": "greeting",
        "version": 1,
        "cache": "miss",
        "model": "m",
        "status": 200,
        "request_id": "req-1",
        "store": "mem",
    }
    assert line["overhead_ms"] >= 0
    assert line["duration_ms"] >= line["overhead_ms"]


async def test_errors_are_logged_with_request_id(client: httpx2.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        await post(client, b"{", headers={"x-request-id": "req-2"})
    line = next(log for log in logs if log["event"] == "prompt_request")
    assert (line["status"], line["error"], line["request_id"]) == (400, "invalid_request", "req-2")
