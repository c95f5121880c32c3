"""What the upstream's answer says — its model, ``usage`` and message — read as it passes.

The doors hand every chunk of the answer to a reader *after* passing it on (or beside doing
so): nothing here buffers, delays or changes a byte the client gets. Two readers:

* :class:`JsonAnswerReader` keeps a copy of a plain JSON answer (up to a bound) and decodes
  the few fields it needs once the last byte has gone.
* :class:`StreamAnswerReader` reads a ``text/event-stream`` incrementally: chunks may split
  lines (and ``\\r\\n``) anywhere. It decodes the events it needs — the first (for the
  model), the one carrying ``usage`` (sent when the client asked
  ``stream_options.include_usage``), the events up to the first non-empty text delta (its
  moment is the answer's first token), and, when content is recorded, each delta's text — and
  holds at most one partial event and a bounded output text.

Each API's answers carry the same things in their own places (README, "Three APIs"): chat
completions as above; Responses in its ``response`` object (a stream's ``response.completed``
event) and ``response.output_text.delta`` events; Messages in its ``message`` (a stream's
``message_start``, then ``message_delta``'s cumulative output count) and ``content_block_delta``
events. Their usage is given as chat's ``prompt_tokens`` / ``completion_tokens``, whatever the
API calls them. :func:`reader_for` picks the reader by content type and API name.

The span and the per-variant metrics (README, "Dashboard") read one reader's result.
"""

from __future__ import annotations

from typing import Final

from prompt_middleware.tracing.answer.base import (
    MAX_EVENT_BYTES,
    MAX_JSON_ANSWER_BYTES,
    MAX_OUTPUT_CHARS,
    Answer,
    AnswerReader,
    Usage,
)
from prompt_middleware.tracing.answer.chat import JsonAnswerReader, StreamAnswerReader
from prompt_middleware.tracing.answer.messages import MessagesJsonReader, MessagesStreamReader
from prompt_middleware.tracing.answer.responses import ResponsesJsonReader, ResponsesStreamReader

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_JSON_ANSWER_BYTES",
    "MAX_OUTPUT_CHARS",
    "Answer",
    "AnswerReader",
    "JsonAnswerReader",
    "MessagesJsonReader",
    "MessagesStreamReader",
    "ResponsesJsonReader",
    "ResponsesStreamReader",
    "StreamAnswerReader",
    "Usage",
    "reader_for",
]

_EVENT_STREAM: Final = b"text/event-stream"
_EVENT_STREAM_LENGTH: Final = len(_EVENT_STREAM)

# Each API's readers, by the API's name (``apis/``): (JSON answer, event stream).
_READERS: Final[dict[str, tuple[type[JsonAnswerReader], type[StreamAnswerReader]]]] = {
    "chat": (JsonAnswerReader, StreamAnswerReader),
    "responses": (ResponsesJsonReader, ResponsesStreamReader),
    "messages": (MessagesJsonReader, MessagesStreamReader),
}
_CHAT_READERS: Final = _READERS["chat"]


def reader_for(
    content_type: bytes | str | None, *, content: bool, api: str = "chat"
) -> AnswerReader:
    """The reader for an answer of this ``content-type`` (a stream or a JSON answer) from
    the API named ``api``."""
    json_reader, stream_reader = _READERS.get(api, _CHAT_READERS)
    if content_type is not None and _is_event_stream(content_type):
        return stream_reader(content=content)
    return json_reader(content=content)


def _is_event_stream(content_type: bytes | str) -> bool:
    if isinstance(content_type, str):
        content_type = content_type.encode("latin-1")
    return content_type[:_EVENT_STREAM_LENGTH].lower() == _EVENT_STREAM  # any case, any params
