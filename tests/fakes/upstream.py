"""A fake OpenAI-compatible upstream: a raw ASGI app with knobs for the forwarder's tests.

``POST /v1/responses`` and ``POST /v1/messages`` answer in the shapes of OpenAI's Responses
API and Anthropic's Messages API (``api_answers.py``), their text the request body, streamed
as those APIs stream; ``POST /v1/messages/count_tokens`` counts a token per 4 bytes.
``POST /v1/chat/completions`` answers a ``chat.completion`` whose content is the request body
it received, or with ``"stream": true`` an SSE stream of ``chat.completion.chunk`` events
ending with ``data: [DONE]``; ``GET /v1/models`` lists one model; anything else is a 404 in
OpenAI's shape. Every request is recorded as it arrived.

``usage`` counts a token per 4 bytes of the request body and one per word of the answer
(distinct numbers, so a test can tell them apart). A stream carries it as OpenAI's does only
when the request asks ``"stream_options": {"include_usage": true}``: ``"usage": null`` on
every chunk, then one last chunk with no choices and the usage, before ``[DONE]``.

Knobs (set them before the request): ``response`` replaces every answer; ``extra_headers``
are added to every answer; ``hold_headers`` is awaited before the response starts; ``gate``
is awaited after the first stream event; ``drop_after`` ends the connection after that many
stream events, without the final chunk. Waits end early when the client goes away, which is
counted in ``cancelled`` and signalled by ``stream_cancelled``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.types import Receive, Scope, Send

from tests.fakes import api_answers

__all__ = ["CannedResponse", "FakeUpstream", "RecordedRequest"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    client: tuple[str, int] | None  # the TCP peer: one port per upstream connection

    def header(self, name: str) -> str | None:
        values = self.headers_named(name)
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


@dataclass(frozen=True)
class CannedResponse:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class FakeUpstream:
    chunks: int = 3
    response: CannedResponse | None = None
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    hold_headers: asyncio.Event | None = None
    gate: asyncio.Event | None = None
    drop_after: int | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    open_streams: int = 0
    completed: int = 0
    cancelled: int = 0
    request_received: asyncio.Event = field(default_factory=asyncio.Event)
    stream_started: asyncio.Event = field(default_factory=asyncio.Event)
    stream_cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        request = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=bytes(body),
            client=tuple(scope["client"]) if scope.get("client") else None,
        )
        self.requests.append(request)
        self.request_received.set()
        if self.hold_headers is not None and not await self._wait(self.hold_headers, receive):
            return
        if self.response is not None:
            canned = self.response
            await _answer(send, canned.status, canned.body, [*canned.headers, *self.extra_headers])
        elif request.method == "POST" and request.path == "/v1/chat/completions":
            await self._chat(request, receive, send)
        elif request.method == "POST" and request.path == "/v1/responses":
            await self._typed(request, receive, send, anthropic=False)
        elif request.method == "POST" and request.path == "/v1/messages":
            await self._typed(request, receive, send, anthropic=True)
        elif request.method == "POST" and request.path == "/v1/messages/count_tokens":
            await self._json(send, 200, {"input_tokens": len(request.body) // 4})
        elif request.method == "GET" and request.path == "/v1/models":
            models = {"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]}
            await self._json(send, 200, models)
        else:
            error = {"message": f"Unknown path {request.path}", "type": "invalid_request_error"}
            await self._json(send, 404, {"error": {**error, "param": None, "code": None}})

    async def _json(self, send: Send, status: int, document: Any) -> None:
        headers = [(b"content-type", b"application/json"), *self.extra_headers]
        await _answer(send, status, msgspec.json.encode(document), headers)

    async def _chat(self, request: RecordedRequest, receive: Receive, send: Send) -> None:
        try:
            document = request.json()
        except msgspec.DecodeError:
            document = {}
        model = document.get("model", "gpt-4o") if isinstance(document, dict) else "gpt-4o"
        content = request.body.decode("utf-8", "replace")
        usage = _usage(request.body, content)
        if not (isinstance(document, dict) and document.get("stream") is True):
            await self._json(send, 200, _completion(model, content, usage))
            return
        options = document.get("stream_options")
        with_usage = isinstance(options, dict) and options.get("include_usage") is True
        events = _events(model, content, self.chunks, usage if with_usage else None)
        self.open_streams += 1
        self.stream_started.set()
        try:
            await self._stream(events, receive, send)
        except asyncio.CancelledError:
            self._cancel()
            raise
        finally:
            self.open_streams -= 1

    async def _typed(
        self, request: RecordedRequest, receive: Receive, send: Send, *, anthropic: bool
    ) -> None:
        """A Responses or Messages answer (tests/fakes/api_answers.py), its text the request."""
        try:
            document = request.json()
        except msgspec.DecodeError:
            document = {}
        if not isinstance(document, dict):
            document = {}
        model = document.get("model", "gpt-4o")
        text = request.body.decode("utf-8", "replace")
        counts = api_answers.usage_counts(request.body, text)
        if document.get("stream") is not True:
            answer = api_answers.message if anthropic else api_answers.response
            await self._json(send, 200, answer(model, text, counts))
            return
        stream = api_answers.message_events if anthropic else api_answers.response_events
        self.open_streams += 1
        self.stream_started.set()
        try:
            await self._stream(stream(model, text, counts, self.chunks), receive, send)
        finally:
            self.open_streams -= 1

    async def _stream(self, events: list[bytes], receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream"), *self.extra_headers]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, event in enumerate(events):
            if self.drop_after is not None and index == self.drop_after:
                # Returning without the final chunk makes uvicorn close the connection.
                return
            await send({"type": "http.response.body", "body": event, "more_body": True})
            if index == 0 and self.gate is not None and not await self._wait(self.gate, receive):
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self.completed += 1

    async def _wait(self, event: asyncio.Event, receive: Receive) -> bool:
        """Wait for ``event``; False (and counted as cancelled) if the client leaves first."""
        released = asyncio.ensure_future(event.wait())
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            done, _ = await asyncio.wait({released, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            released.cancel()
            gone.cancel()
        if gone in done:
            self._cancel()
            return False
        return True

    def _cancel(self) -> None:
        self.cancelled += 1
        self.stream_cancelled.set()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    length = (b"content-length", str(len(body)).encode("ascii"))
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    await send({"type": "http.response.body", "body": body})


def _usage(body: bytes, content: str) -> dict[str, int]:
    prompt, completion = len(body) // 4, len(content.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(model: str, content: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


def _events(
    model: str, content: str, pieces: int, usage: dict[str, int] | None = None
) -> list[bytes]:
    """The SSE events of a streamed answer: role, ``pieces`` parts of content, stop, the usage
    chunk (when ``usage`` is given), [DONE]."""
    size = max(1, -(-len(content) // pieces))
    parts = [content[i : i + size] for i in range(0, len(content), size)] or [""]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": part} for part in parts]
    chunks: list[dict[str, Any]] = []
    for index, delta in enumerate([*deltas, {}]):
        finish = "stop" if index == len(deltas) else None
        chunks.append({"index": 0, "delta": delta, "finish_reason": finish})
    events = []
    for choice in chunks:
        chunk: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [choice],
        }
        if usage is not None:
            chunk["usage"] = None
        events.append(b"data: " + msgspec.json.encode(chunk) + b"\n\n")
    if usage is not None:
        last = {**chunk, "choices": [], "usage": usage}
        events.append(b"data: " + msgspec.json.encode(last) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events
