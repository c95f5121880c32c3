"""The Responses API's answers: a ``response`` object, and its event stream
(``response.output_text.delta`` texts, the ``response`` of ``response.completed``)."""

from __future__ import annotations

from typing import Final

import msgspec

from prompt_middleware.tracing.answer.base import (
    Answer,
    InputOutputUsage,
    Part,
    message_json,
    usage_of,
)
from prompt_middleware.tracing.answer.chat import JsonAnswerReader, StreamAnswerReader

__all__ = ["ResponsesJsonReader", "ResponsesStreamReader"]


class _OutputItem(msgspec.Struct):
    type: str = ""
    content: list[Part] = msgspec.field(default_factory=list)


class _Response(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    output: list[_OutputItem] = msgspec.field(default_factory=list)
    usage: InputOutputUsage | None = None


class _ResponseEvent(msgspec.Struct):
    type: str = ""
    response: _Response | None = None
    delta: str | None = None


_response_decoder: Final = msgspec.json.Decoder(_Response)
_response_event_decoder: Final = msgspec.json.Decoder(_ResponseEvent)


def _response_answer(response: _Response, content: bool) -> Answer:
    output = None
    if content:
        texts = [
            part.text
            for item in response.output
            if item.type == "message"
            for part in item.content
            if part.type == "output_text" and part.text is not None
        ]
        output = message_json("".join(texts)) if texts else None
    return Answer(
        model=response.model,
        response_id=response.id,
        usage=usage_of(response.usage),
        output=output,
    )


class ResponsesJsonReader(JsonAnswerReader):
    """A Responses ``response`` object."""

    __slots__ = ()

    def _answer(self, body: bytes) -> Answer:
        return _response_answer(_response_decoder.decode(body), self._content)


class ResponsesStreamReader(StreamAnswerReader):
    """A Responses event stream: the ``response`` of ``response.completed`` (or of
    ``response.created``, for a stream cut short) and the ``response.output_text.delta``
    texts."""

    __slots__ = ()

    def _matters(self, events: bytes) -> bool:
        # Once settled: only created and completed (they carry the response).
        return b'"response.c' in events

    def _read_event(self, event: bytes) -> None:
        decoded = _response_event_decoder.decode(event)
        if decoded.type == "response.output_text.delta":
            if decoded.delta:
                self._text_arrived(decoded.delta)
            return
        response = decoded.response
        if response is None:
            return
        if response.model:
            self._model = response.model
        if response.id:
            self._response_id = response.id
        usage = usage_of(response.usage)
        if usage is not None:
            self._usage = usage
