"""Anthropic's Messages API's answers: a ``message``, and its event stream (``message_start``,
``content_block_delta``, ``message_delta``)."""

from __future__ import annotations

from typing import Final

import msgspec

from prompt_middleware.tracing.answer.base import (
    Answer,
    InputOutputUsage,
    Part,
    Usage,
    message_json,
    usage_of,
)
from prompt_middleware.tracing.answer.chat import JsonAnswerReader, StreamAnswerReader

__all__ = ["MessagesJsonReader", "MessagesStreamReader"]


class _Message(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    content: list[Part] = msgspec.field(default_factory=list)
    usage: InputOutputUsage | None = None


class _MessageEvent(msgspec.Struct):
    type: str = ""
    message: _Message | None = None
    usage: InputOutputUsage | None = None
    delta: Part | None = None


_message_decoder: Final = msgspec.json.Decoder(_Message)
_message_event_decoder: Final = msgspec.json.Decoder(_MessageEvent)


class MessagesJsonReader(JsonAnswerReader):
    """An Anthropic ``message``."""

    __slots__ = ()

    def _answer(self, body: bytes) -> Answer:
        message = _message_decoder.decode(body)
        output = None
        if self._content:
            texts = [p.text for p in message.content if p.type == "text" and p.text is not None]
            output = message_json("".join(texts)) if texts else None
        return Answer(
            model=message.model,
            response_id=message.id,
            usage=usage_of(message.usage),
            output=output,
        )


class MessagesStreamReader(StreamAnswerReader):
    """Anthropic's event stream: input tokens from ``message_start``, output tokens from
    ``message_delta`` (a cumulative count: the last one is the total), text from
    ``content_block_delta``. Cache token counts are not added."""

    __slots__ = ()

    def _matters(self, events: bytes) -> bool:
        # Once settled: only message_start and message_delta (they carry usage).
        return b'"message_' in events

    def _read_event(self, event: bytes) -> None:
        decoded = _message_event_decoder.decode(event)
        kind = decoded.type
        if kind == "content_block_delta":
            delta = decoded.delta
            if delta is not None and delta.text:
                self._text_arrived(delta.text)
        elif kind == "message_start" and decoded.message is not None:
            message = decoded.message
            self._model = message.model or self._model
            self._response_id = message.id or self._response_id
            if message.usage is not None:
                self._usage = usage_of(message.usage)
        elif kind == "message_delta" and decoded.usage is not None:
            output_tokens = decoded.usage.output_tokens
            if output_tokens is not None:
                started = self._usage.prompt_tokens if self._usage is not None else None
                self._usage = Usage(prompt_tokens=started, completion_tokens=output_tokens)
