"""The ASGI side of a request span: it reads the answer the app sends, as the app sends it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Protocol

from starlette.types import Message, Send

__all__ = ["AnswerSink", "content_type_of", "traced_send"]

_CONTENT_TYPE: Final = b"content-type"


class AnswerSink(Protocol):
    """What is shown an answer as it goes out: a span, or a door's per-request watch."""

    def response_start(self, status: int, content_type: bytes | str | None) -> None: ...

    def response_chunk(self, chunk: bytes) -> None: ...

    def end(self) -> None: ...


def traced_send(send: Send, span: AnswerSink) -> Send:
    """``send`` that shows the span (or watch) each message once it has gone out.

    The span ends with the last body message. The caller still ends it in a ``finally``
    (a no-op after that): an app that fails, or a client that leaves, sends no last message.
    """

    async def send_traced(message: Message) -> None:
        await send(message)  # first: reading the answer never holds a byte of it up
        kind = message["type"]
        if kind == "http.response.body":
            span.response_chunk(message.get("body", b""))
            if not message.get("more_body", False):
                span.end()
        elif kind == "http.response.start":
            span.response_start(message["status"], content_type_of(message.get("headers", ())))

    return send_traced


def content_type_of(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The ``content-type`` of ASGI response headers (names compared case-insensitively)."""
    for name, value in headers:
        if name.lower() == _CONTENT_TYPE:
            return value
    return None
