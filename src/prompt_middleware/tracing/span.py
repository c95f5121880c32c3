"""One request's span, from its arrival to the last byte of its answer.

A door starts it once the request is rewritten (with the arrival time as its start), tells it
when the answer starts and hands it each chunk as the chunk goes out, and ends it after the
last one. Nothing it does sits between a chunk and the client.
"""

from __future__ import annotations

from typing import Final

import structlog
from opentelemetry.trace import Span, Status, StatusCode

from prompt_middleware.tracing.answer import Answer, AnswerReader, reader_for
from prompt_middleware.tracing.attributes import answer_attributes, error_type_of_status
from prompt_middleware.tracing.context import trace_headers

__all__ = ["GenerationSpan"]

logger = structlog.get_logger(__name__)

_ERROR: Final = Status(StatusCode.ERROR)


class GenerationSpan:
    """An open request span; :meth:`end` it exactly once (later calls do nothing)."""

    __slots__ = ("_content", "_ended", "_error_type", "_reader", "_span")

    def __init__(self, span: Span, *, content: bool) -> None:
        self._span = span
        self._content = content
        self._reader: AnswerReader | None = None
        self._error_type: str | None = None
        self._ended = False

    @property
    def span(self) -> Span:
        return self._span

    def trace_headers(self) -> dict[str, str]:
        """``traceparent`` (and ``tracestate``) for the request sent upstream."""
        return trace_headers(self._span)

    @property
    def content(self) -> bool:
        """Whether the span records the answer's message (``PROMPT_MIDDLEWARE_TRACE_CONTENT``)."""
        return self._content

    def response_start(self, status: int, content_type: bytes | str | None) -> None:
        """The answer's status and content type; an error status marks the span."""
        if self.answer_wanted(status):
            self._reader = reader_for(content_type, content=self._content)

    def answer_wanted(self, status: int) -> bool:
        """Mark an error status; whether the span records what an answer of ``status`` says
        (to be read by one reader and handed to :meth:`end` by a caller that reads it)."""
        error_type = error_type_of_status(status)
        if error_type is not None:
            if self._error_type is None:
                self._error_type = error_type
            return False  # an error body has no usage or message to read
        return self._span.is_recording()  # a span the sampler left out records nothing

    def response_chunk(self, chunk: bytes) -> None:
        """A chunk of the answer's body, as it goes to the client."""
        if self._reader is not None and chunk:
            try:
                self._reader.feed(chunk)
            except Exception:  # a span must never break an answer: stop reading this one
                logger.exception("trace_answer_unreadable")
                self._reader = None

    def fail(self, error_type: str) -> None:
        """Mark the span as failed with our error code (it wins over a status)."""
        self._error_type = error_type

    def end(self, answer: Answer | None = None) -> None:
        """Record what the answer said (``answer``, read by the caller, or the span's own
        reader's) and end the span (at the last byte)."""
        if self._ended:
            return
        self._ended = True
        span = self._span
        reader, self._reader = self._reader, None
        try:
            if reader is not None:
                answer = reader.finish()
            attributes = {} if answer is None else answer_attributes(answer)
        except Exception:  # as above: the span ends without what the answer said
            logger.exception("trace_answer_unreadable")
            attributes = {}
        if attributes:
            span.set_attributes(attributes)
        if self._error_type is not None:
            span.set_attribute("error.type", self._error_type)
            span.set_status(_ERROR)
        span.end()
