"""One request's span, from its arrival to the last byte of its answer.

A door starts it once the request is rewritten (with the arrival time as its start), tells it
when the answer starts and hands it each chunk as the chunk goes out, and ends it after the
last one. Nothing it does sits between a chunk and the client. A span the sampler leaves out
keeps only its ids (for the ``traceparent`` sent on) and records nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http import HTTPStatus

import structlog

from prompt_middleware.tracing.answer import Answer, AnswerReader, reader_for
from prompt_middleware.tracing.attributes import answer_attributes, error_type_of_status
from prompt_middleware.tracing.context import Parent, traceparent_of
from prompt_middleware.tracing.record import Attributes, SpanRecord

__all__ = ["GenerationSpan"]

logger = structlog.get_logger(__name__)


class GenerationSpan:
    """An open request span; :meth:`end` it exactly once (later calls do nothing)."""

    __slots__ = (
        "_api",
        "_attributes",
        "_content",
        "_ended",
        "_error_message",
        "_error_type",
        "_finish",
        "_linked",
        "_name",
        "_parent",
        "_reader",
        "_start_ns",
        "sampled",
        "span_id",
        "trace_id",
    )

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        parent: Parent | None,
        *,
        finish: Callable[[SpanRecord], None] | None,
        content: bool = True,
        sampled: bool | None = None,
    ) -> None:
        """``finish`` receives the record once the span ends; None: the span records nothing
        (the sampler left it out, or it was dropped at its start). ``sampled`` is the
        sampler's decision, sent on in ``traceparent`` (default: whether it records)."""
        self.trace_id = trace_id
        self.span_id = span_id
        self.sampled = finish is not None if sampled is None else sampled
        self._parent = parent
        self._finish = finish
        self._content = content
        self._name = ""
        self._attributes: Attributes = {}
        self._linked: Attributes | None = None
        self._start_ns = 0
        self._api = "chat"  # whose answer this is: where its usage and text are
        self._reader: AnswerReader | None = None
        self._error_type: str | None = None
        self._error_message = ""
        self._ended = False

    def record(
        self,
        name: str,
        attributes: Attributes,
        start_ns: int,
        api: str = "chat",
        linked: Attributes | None = None,
    ) -> None:
        """What the request said (set once, when sampled), its API's name, and the shared
        attributes of its prompt version (:attr:`SpanRecord.linked`)."""
        self._name = name
        self._attributes = attributes
        self._linked = linked
        self._start_ns = start_ns
        self._api = api

    def trace_headers(self) -> dict[str, str]:
        """``traceparent`` (and the parent's ``tracestate``) for the request sent upstream."""
        headers = {"traceparent": traceparent_of(self.trace_id, self.span_id, self.sampled)}
        if self._parent is not None and self._parent.trace_state:
            headers["tracestate"] = self._parent.trace_state
        return headers

    def trace_header_items(self) -> list[tuple[bytes, bytes]]:
        """:meth:`trace_headers` as raw ASGI header pairs."""
        items = [
            (b"traceparent", traceparent_of(self.trace_id, self.span_id, self.sampled).encode())
        ]
        if self._parent is not None and self._parent.trace_state:
            items.append((b"tracestate", self._parent.trace_state.encode("latin-1")))
        return items

    @property
    def recording(self) -> bool:
        """Whether the span records what it is told (sampled, and not dropped at its start)."""
        return self._finish is not None

    @property
    def content(self) -> bool:
        """Whether the span records the answer's message (``PROMPT_MIDDLEWARE_TRACE_CONTENT``)."""
        return self._content

    def response_start(self, status: int, content_type: bytes | str | None) -> None:
        """The answer's status and content type; an error status marks the span."""
        if self.answer_wanted(status):
            self._reader = reader_for(content_type, content=self._content, api=self._api)

    def answer_wanted(self, status: int) -> bool:
        """Mark an error status; whether the span records what an answer of ``status`` says
        (to be read by one reader and handed to :meth:`end` by a caller that reads it)."""
        error_type = error_type_of_status(status)
        if error_type is not None:
            if self._error_type is None:
                self._error_type = error_type
                self._error_message = _status_line(status)
            return False  # an error body has no usage or message to read
        return self.recording  # a span the sampler left out (or dropped) records nothing

    def response_chunk(self, chunk: bytes) -> None:
        """A chunk of the answer's body, as it goes to the client."""
        if self._reader is not None and chunk:
            try:
                self._reader.feed(chunk)
            except Exception:  # a span must never break an answer: stop reading this one
                logger.exception("trace_answer_unreadable")
                self._reader = None

    def fail(self, error_type: str, message: str | None = None) -> None:
        """Mark the span as failed with our error code and message (they win over a status)."""
        self._error_type = error_type
        self._error_message = error_type if message is None else message

    def end(self, answer: Answer | None = None) -> None:
        """Record what the answer said (``answer``, read by the caller, or the span's own
        reader's) and end the span (at the last byte)."""
        if self._ended:
            return
        self._ended = True
        finish = self._finish
        if finish is None:
            return
        end_ns = time.time_ns()
        attributes = self._attributes
        reader, self._reader = self._reader, None
        try:
            if reader is not None:
                answer = reader.finish()
            if answer is not None:
                attributes.update(answer_attributes(answer))
        except Exception:  # as above: the span ends without what the answer said
            logger.exception("trace_answer_unreadable")
        if self._error_type is not None:
            attributes["error.type"] = self._error_type
        parent = self._parent
        finish(
            SpanRecord(
                self.trace_id,
                self.span_id,
                0 if parent is None else parent.span_id,
                parent is not None and parent.remote,
                "" if parent is None else parent.trace_state,
                self._name,
                self._start_ns,
                end_ns,
                attributes,
                self._error_type is not None,
                self._error_message,
                self._linked,
            )
        )


def _status_line(status: int) -> str:
    """``429 Too Many Requests``: the upstream's status as its status line says it."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
