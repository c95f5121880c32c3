"""The body size limit (``PROMPT_MIDDLEWARE_MAX_BODY_BYTES``): enforced while the body is read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.types import Message

from prompt_middleware import PromptMiddleware, Settings
from tests.conftest import RecordingApp
from tests.engine.fake_servers import (
    URL,
    error_of,
)
from tests.engine.limits import (
    LimitsClient,
    limits_clients,
    padded,
)


@pytest.fixture
async def limits_client() -> AsyncIterator[LimitsClient]:
    async with limits_clients() as make:
        yield make


async def test_body_size_limit(limits_client: LimitsClient) -> None:
    client = limits_client(max_body_bytes=1000)

    async def streamed(body: bytes) -> Any:  # no content-length: chunked
        for start in range(0, len(body), 300):
            yield body[start : start + 300]

    at_limit = await client.post(URL, content=padded(1000))
    over = await client.post(URL, content=padded(1001))
    over_streamed = await client.post(URL, content=streamed(padded(1001)))
    assert at_limit.status_code == 200
    for response in (over, over_streamed):
        assert response.status_code == 413
        error = error_of(response)
        assert error["code"] == "request_too_large"
        assert "PROMPT_MIDDLEWARE_MAX_BODY_BYTES" in error["message"]


async def test_a_body_larger_than_its_content_length_is_still_cut_off() -> None:
    app = RecordingApp()
    middleware = PromptMiddleware(app, Settings(max_body_bytes=1000))
    chunks = [padded(2000)[:700], padded(2000)[700:]]
    sent: list[Message] = []

    async def receive() -> Message:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": URL,
        "headers": [(b"content-length", b"10")],  # a lie
    }
    await middleware(scope, receive, send)
    await middleware.engine.aclose()
    assert sent[0]["status"] == 413
    assert app.requests == []


async def test_the_default_body_limit_is_16_mib(limits_client: LimitsClient) -> None:
    client = limits_client(Settings())
    response = await client.post(URL, content=padded(16 * 1024 * 1024 + 1))
    assert response.status_code == 413
