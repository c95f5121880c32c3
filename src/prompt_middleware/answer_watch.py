"""One request's answer, watched as it goes out: what the ASGI door learns after the rewrite.

An :class:`AnswerWatch` exists only for a request something wants to know the answer of: its
span (traces on) or its experiment's per-variant metrics (an observer, and a request in an
experiment; README, "Dashboard"). It owns the one reader of the answer
(:mod:`prompt_middleware.tracing.answer`), made when the span records the answer or the
request is in an experiment, and at the end hands what it read to both.

The times are the request's: from its arrival at the door (``started``) until the upstream's
response headers (told by the forwarder, :meth:`AnswerWatch.upstream_answered`), the first
non-empty text delta of a stream, and the answer's last byte. The door's send wrapper
(:func:`watched_send`, or one of its own) shows it each message after it went out
(:meth:`AnswerWatch.show`).
"""

from __future__ import annotations

import time
from typing import Final

import structlog
from starlette.types import Message, Send

from prompt_middleware.observe import ExperimentAnswer, Observer
from prompt_middleware.tracing import content_type_of
from prompt_middleware.tracing.answer import AnswerReader, reader_for
from prompt_middleware.tracing.span import GenerationSpan

__all__ = ["AnswerWatch", "watched_send"]

logger = structlog.get_logger(__name__)

_ERROR_STATUS: Final = 400


class AnswerWatch:
    """The answer of one request: :meth:`end` it exactly once (later calls do nothing).

    ``span`` is the request's span, if traced. ``observer`` is given for a request in an
    experiment: ``experiment`` and ``variant`` name the variant it was served (as
    ``x-prompt-variant`` shows it), reported to it at the end.
    """

    __slots__ = (
        "_api",
        "_ended",
        "_experiment",
        "_observer",
        "_reader",
        "_started",
        "_status",
        "_upstream_seconds",
        "_variant",
        "span",
    )

    def __init__(
        self,
        started: float,
        span: GenerationSpan | None,
        *,
        observer: Observer | None = None,
        experiment: str = "",
        variant: str = "",
        api: str = "chat",
    ) -> None:
        self._started = started
        self.span = span
        self._observer = observer
        self._experiment = experiment
        self._variant = variant
        self._api = api  # whose answer this is: where its usage and text are (README, "Three APIs")
        self._reader: AnswerReader | None = None
        self._status = 0
        self._upstream_seconds: float | None = None
        self._ended = False

    def upstream_answered(self, seconds: float) -> None:
        """The upstream's response headers arrived ``seconds`` after it was called."""
        self._upstream_seconds = seconds

    def show(self, message: Message) -> None:
        """A message of the answer, once it went to the client: its start (status, content
        type), a chunk of its body, and with the last one the end (:meth:`end`)."""
        if message["type"] == "http.response.body":
            reader = self._reader
            if reader is not None:
                chunk = message.get("body", b"")
                if chunk:
                    try:
                        reader.feed(chunk)
                    except Exception:  # reading must never break an answer: stop reading it
                        logger.exception("answer_unreadable")
                        self._reader = None
            if not message.get("more_body", False):
                self.end()
        elif message["type"] == "http.response.start":
            self._answer_started(message["status"], content_type_of(message.get("headers", ())))

    def _answer_started(self, status: int, content_type: bytes | None) -> None:
        self._status = status
        span = self.span
        traced = span is not None and span.answer_wanted(status)
        if traced or (self._observer is not None and status < _ERROR_STATUS):
            content = traced and span is not None and span.content
            self._reader = reader_for(content_type, content=content, api=self._api)

    def fail(self, error_type: str, message: str | None = None) -> None:
        """Mark the span as failed with our error code and message (they win over a status)."""
        if self.span is not None:
            self.span.fail(error_type, message)

    def end(self) -> None:
        """The answer is over (its last byte went out, or it stopped): report it."""
        if self._ended:
            return
        self._ended = True
        ended = time.perf_counter()
        answer = None
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                answer = reader.finish()
            except Exception:  # as above: the answer is reported without what it said
                logger.exception("answer_unreadable")
        if self.span is not None:
            self.span.end(answer)
        if self._observer is not None and self._status:
            usage = None if answer is None else answer.usage
            first_text_at = None if reader is None else reader.first_text_at
            self._observer.experiment_answer(
                ExperimentAnswer(
                    self._experiment,
                    self._variant,
                    self._status,
                    self._upstream_seconds,
                    None if first_text_at is None else first_text_at - self._started,
                    ended - self._started,
                    None if usage is None else usage.prompt_tokens,
                    None if usage is None else usage.completion_tokens,
                )
            )


def watched_send(send: Send, watch: AnswerWatch) -> Send:
    """``send`` that shows ``watch`` each message once it has gone out.

    The watch ends with the last body message. The caller still ends it in a ``finally``
    (a no-op after that): an app that fails, or a client that leaves, sends no last message.
    """

    async def send_watched(message: Message) -> None:
        await send(message)  # first: reading the answer never holds a byte of it up
        watch.show(message)

    return send_watched
