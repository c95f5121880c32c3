"""The echo upstream: the sidecar's dry run, with no LLM and no network.

Each request of a managed API (chat completions, Responses, Messages) is answered in that API's
shape — a ``chat.completion``, a ``response``, a ``message``, or when it asks for ``"stream":
true`` that API's event stream — whose text is the request it received, as JSON: what the
upstream would have been sent. Each API's record (``apis/``) writes its own answer.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

import msgspec
from starlette.types import Receive, Scope, Send

from prompt_middleware.apis import APIS, api_of
from prompt_middleware.asgi import send_response, serve_lifespan
from prompt_middleware.errors import InvalidRequest, PromptNotFound

__all__ = ["EchoUpstream"]

_SSE: Final = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
# An answer's id, by API: what the real APIs' ids look like.
_ID_PREFIXES: Final = {"chat": "chatcmpl-echo-", "responses": "resp_echo", "messages": "msg_echo"}


class EchoUpstream:
    """An ASGI app answering ``POST …/chat/completions``, ``…/responses`` and
    ``…/messages`` with the request it received."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        api = next((api for api in APIS if path.endswith(api.route_suffix)), None)
        if scope["method"] != "POST" or api is None:
            error = PromptNotFound(
                "The echo upstream only answers POST /v1/chat/completions, /v1/responses and "
                "/v1/messages."
            )
            await api_of(scope).send_error(send, error)
            return
        body = await _read(receive)
        try:
            request: Any = msgspec.json.decode(body)
        except msgspec.DecodeError:
            request = None
        if not isinstance(request, dict):
            await api.send_error(send, InvalidRequest("The request body must be a JSON object."))
            return
        answer_id = _ID_PREFIXES[api.name] + uuid.uuid4().hex[:12]
        model = request.get("model")
        if not isinstance(model, str):
            model = "echo"
        text = body.decode("utf-8", errors="replace")
        if request.get("stream") is not True:
            await send_response(send, 200, api.echo_answer(answer_id, model, text))
            return
        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        for event in api.echo_events(answer_id, model, text):
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
