"""What the transport's tests share: an upstream's completions and chunks, what went out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import respx

UPSTREAM = "http://upstream.test/v1"


CHAT_URL = f"{UPSTREAM}/chat/completions"


def completion(content: str = "Hi!", model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def chunk(content: str, finish: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
    }
    return f"data: {json.dumps(event)}\n\n".encode()


def sent(route: respx.Route) -> Any:
    return json.loads(route.calls.last.request.content)


MakeClient = Callable[..., openai.AsyncOpenAI]


def sdk_http_client(transport: httpx2.AsyncBaseTransport) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=transport)


def http_client_of(client: openai.AsyncOpenAI) -> httpx2.AsyncClient:
    """The httpx2 client under the SDK, to send raw requests through the same transport."""
    return client._client


def error_body(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert exc.response.headers["content-type"] == "application/json"
    assert exc.body == body["error"]
    error: dict[str, Any] = body["error"]
    return error


class RecordingTransport(httpx2.AsyncBaseTransport):
    def __init__(self) -> None:
        self.closed = False

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("not called")

    async def aclose(self) -> None:
        self.closed = True
