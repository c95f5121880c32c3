"""One canonical log line per request, through the transport."""

from __future__ import annotations

import openai
import pytest
import respx
import structlog

from tests.doors.transport.helpers import CHAT_URL, completion


async def test_one_canonical_log_line_per_request(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    router.post(CHAT_URL).respond(201, json=completion())
    with structlog.testing.capture_logs() as logs:
        await client.chat.completions.create(
            model="mem/gpt-4o-mini",
            messages=[],
            extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Jo"}},
            extra_headers={"x-request-id": "req-1"},
        )
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(
                model="m", messages=[], extra_body={"prompt_id": "nope"}
            )
    first, second = (log for log in logs if log["event"] == "prompt_request")
    assert first["route"] == "/v1/chat/completions"
    assert (first["request_id"], first["status"], first["model"]) == ("req-1", 201, "gpt-4o-mini")
    assert (first["prompt"], first["version"], first["store"], first["cache"]) == (
        "greeting",
        1,
        "mem",
        "miss",
    )
    assert first["overhead_ms"] <= first["duration_ms"]
    assert (second["status"], second["error"]) == (404, "prompt_not_found")
