"""The body the wrapped app gets: its length corrected, and nothing when the client leaves early."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
from starlette.types import Message

from prompt_middleware import PromptMiddleware, Settings
from tests.conftest import RecordingApp
from tests.doors.middleware.helpers import URL
from tests.fakes.memory import MemoryStore


async def test_content_length_is_corrected_and_chunked_encoding_dropped(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    async def chunks() -> Any:
        yield b'{"model":"gpt-4o","prompt_id":"greeting",'
        yield b'"prompt_variables":{"name":"Ada","place":"here"}}'

    response = await client.post(URL, content=chunks())
    assert response.status_code == 200
    assert int(app.last.headers["content-length"]) == len(app.last.body)
    assert "transfer-encoding" not in app.last.headers


async def test_client_disconnect_before_body_ends_does_not_call_the_app(
    store: MemoryStore, app: RecordingApp
) -> None:
    middleware = PromptMiddleware(app, Settings(default_store="mem"), stores={"mem": store})
    messages: Iterator[Message] = iter(
        [
            {"type": "http.request", "body": b'{"prompt_id"', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": URL, "headers": []}
    await middleware(scope, receive, send)
    assert (app.requests, sent) == ([], [])
