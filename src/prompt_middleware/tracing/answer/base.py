"""What every reader gives (:class:`Answer`), how it is fed (:class:`AnswerReader`), its bounds,
and the pieces the Responses and Messages readers share."""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_JSON_ANSWER_BYTES",
    "MAX_OUTPUT_CHARS",
    "Answer",
    "AnswerReader",
    "InputOutputUsage",
    "Part",
    "Usage",
    "message_json",
    "usage_of",
]

#: A JSON answer larger than this is passed on but not read (no usage, no output).
MAX_JSON_ANSWER_BYTES: Final = 4 * 1024 * 1024
#: A stream event larger than this is skipped; a chat chunk is a few hundred bytes.
MAX_EVENT_BYTES: Final = 1024 * 1024
#: The streamed output text kept for the span, in characters; the rest is cut.
MAX_OUTPUT_CHARS: Final = 256 * 1024


class Usage(msgspec.Struct, frozen=True):
    """The token counts of OpenAI's ``usage`` object (other fields are ignored)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """What the span records about an answer; each field None when the answer did not say.

    ``output`` is the answer's message as JSON text, or None when content is not recorded.
    """

    model: str | None = None
    response_id: str | None = None
    usage: Usage | None = None
    output: str | None = None


class AnswerReader:
    """The interface of both readers: fed each chunk, asked once at the end.

    ``first_text_at`` is the ``time.perf_counter()`` at which the chunk carrying the first
    non-empty text delta was fed (a stream's first token), or None (no text yet, not a stream).
    """

    __slots__ = ()

    first_text_at: float | None = None

    def feed(self, chunk: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> Answer:
        raise NotImplementedError


_encode: Final = msgspec.json.Encoder().encode


class InputOutputUsage(msgspec.Struct):
    """Usage as Responses and Messages name it."""

    input_tokens: int | None = None
    output_tokens: int | None = None


class Part(msgspec.Struct):
    type: str = ""
    text: str | None = None


def usage_of(usage: InputOutputUsage | None) -> Usage | None:
    if usage is None:
        return None
    return Usage(prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens)


def message_json(text: str) -> str:
    return _encode({"role": "assistant", "content": text}).decode()
