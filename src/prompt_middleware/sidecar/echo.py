"""The echo upstream: the sidecar's dry run, with no LLM and no network.

Each chat-completions request is answered with a well-formed ``chat.completion`` (or, when it
asks for ``"stream": true``, a stream of ``chat.completion.chunk`` events) whose content is the
request it received, as JSON: what the upstream would have been sent.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Final

import msgspec
from starlette.types import Receive, Scope, Send

from prompt_middleware.asgi import send_response, serve_lifespan
from prompt_middleware.errors import InvalidRequest, RequestError

__all__ = ["EchoUpstream"]

_encode: Final = msgspec.json.Encoder().encode
_SSE: Final = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_CHUNKS: Final = 4  # a streamed answer comes in a few pieces, as a real one would


class EchoUpstream:
    """An ASGI app answering ``POST …/chat/completions`` with the request it received."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
            await send_response(
                send,
                404,
                _error("The echo upstream only answers POST /v1/chat/completions.", "not_found"),
            )
            return
        body = await _read(receive)
        try:
            request: Any = msgspec.json.decode(body)
            if not isinstance(request, dict):
                raise InvalidRequest("The request body must be a JSON object.")
        except (msgspec.DecodeError, RequestError):
            error = InvalidRequest("The request body must be a JSON object.")
            await send_response(send, error.status_code, error.to_json())
            return
        completion_id = f"chatcmpl-echo-{uuid.uuid4().hex[:12]}"
        model = request.get("model")
        if not isinstance(model, str):
            model = "echo"
        content = body.decode("utf-8", errors="replace")
        if request.get("stream") is True:
            await _stream(send, completion_id, model, content)
        else:
            await send_response(send, 200, _encode(_completion(completion_id, model, content)))


def _completion(completion_id: str, model: str, content: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


async def _stream(send: Send, completion_id: str, model: str, content: str) -> None:
    created = int(time.time())

    def chunk(delta: dict[str, str], finish_reason: str | None = None) -> bytes:
        event = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return b"data: " + _encode(event) + b"\n\n"

    await send({"type": "http.response.start", "status": 200, "headers": _SSE})
    size = max(1, -(-len(content) // _CHUNKS))
    pieces = [content[i : i + size] for i in range(0, len(content), size)] or [""]
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    events += [chunk({}, "stop"), b"data: [DONE]\n\n"]
    for event in events:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _error(message: str, code: str) -> bytes:
    return _encode(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
    )
