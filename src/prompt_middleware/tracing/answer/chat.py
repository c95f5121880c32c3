"""Chat completions' answers: a ``chat.completion`` (:class:`JsonAnswerReader`) and a stream of
``chat.completion.chunk`` events (:class:`StreamAnswerReader`, which also reads the event
stream's framing for the other APIs' stream readers)."""

from __future__ import annotations

import re
import time
from typing import Final

import msgspec

from prompt_middleware.tracing.answer.base import (
    MAX_EVENT_BYTES,
    MAX_JSON_ANSWER_BYTES,
    MAX_OUTPUT_CHARS,
    Answer,
    AnswerReader,
    Usage,
    message_json,
)

__all__ = ["JsonAnswerReader", "StreamAnswerReader"]


_NULL: Final = msgspec.Raw(b"null")


class _Choice(msgspec.Struct):
    message: msgspec.Raw = _NULL  # kept as the JSON text it is (a Raw cannot be optional)


class _CompletionHead(msgspec.Struct):
    """What is read of a completion when its message is not recorded (its choices skipped)."""

    id: str | None = None
    model: str | None = None
    usage: Usage | None = None


class _Completion(_CompletionHead):
    choices: list[_Choice] = msgspec.field(default_factory=list)


_completion_decoder: Final = msgspec.json.Decoder(_Completion)
_head_decoder: Final = msgspec.json.Decoder(_CompletionHead)


class JsonAnswerReader(AnswerReader):
    """A ``chat.completion`` answer: a copy of its bytes, decoded at :meth:`finish`."""

    __slots__ = ("_chunks", "_content", "_size")

    def __init__(self, *, content: bool) -> None:
        self._chunks: list[bytes] | None = []
        self._size = 0
        self._content = content

    def feed(self, chunk: bytes) -> None:
        if self._chunks is None:
            return  # too large to read
        self._size += len(chunk)
        if self._size > MAX_JSON_ANSWER_BYTES:
            self._chunks = None
            return
        self._chunks.append(chunk)

    def finish(self) -> Answer:
        if not self._chunks:
            return Answer()
        chunks = self._chunks
        try:
            return self._answer(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        except msgspec.DecodeError:  # not an answer of this API (an error page, another shape)
            return Answer()

    def _answer(self, body: bytes) -> Answer:
        if not self._content:
            head = _head_decoder.decode(body)
            return Answer(model=head.model, response_id=head.id, usage=head.usage)
        completion = _completion_decoder.decode(body)
        output = None
        if completion.choices:
            message = bytes(completion.choices[0].message)
            output = None if message == b"null" else message.decode("utf-8", "replace")
        return Answer(
            model=completion.model,
            response_id=completion.id,
            usage=completion.usage,
            output=output,
        )


# --- a stream of events ----------------------------------------------------------------------


class _Delta(msgspec.Struct):
    content: str | None = None


class _StreamChoice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None


class _Chunk(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[_StreamChoice] = msgspec.field(default_factory=list)
    usage: Usage | None = None


_chunk_decoder: Final = msgspec.json.Decoder(_Chunk)
_DONE: Final = b"[DONE]"

_USAGE_OBJECT: Final = re.compile(rb'"usage"[ \t\r\n]*:[ \t\r\n]*\{')


class StreamAnswerReader(AnswerReader):
    """An SSE stream of ``chat.completion.chunk`` events, read line by line as it passes."""

    __slots__ = (
        "_after_cr",
        "_content",
        "_data",
        "_data_size",
        "_model",
        "_partial",
        "_partial_size",
        "_response_id",
        "_settled",
        "_skipping_line",
        "_text",
        "_text_size",
        "_usage",
        "first_text_at",
    )

    def __init__(self, *, content: bool) -> None:
        self._content = content
        self.first_text_at: float | None = None
        self._settled = False  # see _settle
        self._partial: list[bytes] = []  # the start of a line whose end has not arrived
        self._partial_size = 0
        self._skipping_line = False  # the rest of an over-long line is ignored
        self._after_cr = False  # the last chunk ended with "\r": a "\n" may follow
        self._data: list[bytes] = []  # the data lines of the event being read
        self._data_size = 0
        self._model: str | None = None
        self._response_id: str | None = None
        self._usage: Usage | None = None
        self._text: list[str] = []
        self._text_size = 0

    def feed(self, chunk: bytes) -> None:
        if chunk.endswith(b"\n") and not (
            self._partial or self._skipping_line or self._after_cr or self._data_size
        ):
            # The usual chunk: whole events, nothing held.
            if chunk.endswith(b"\n\n"):
                # Once settled, a chunk that says nothing the reader still wants is not read
                # at all: a long stream costs a search per chunk, not a microsecond per event.
                if (self._settled or self._settle()) and not self._matters(chunk):
                    return
                if self._read_lone_event(chunk):
                    return
            self._lines(chunk.splitlines())
            return
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the "\n" of a "\r\n" split between two chunks
        if not chunk:
            return
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if end < 0:
            self._hold(chunk)
            return
        complete, tail = chunk[: end + 1], chunk[end + 1 :]
        self._after_cr = not tail and complete.endswith(b"\r")
        if self._partial:
            complete = b"".join(self._partial) + complete
            self._partial.clear()
            self._partial_size = 0
        lines = complete.splitlines()
        if self._skipping_line:
            self._skipping_line = False
            del lines[0]  # the end of a line too long to keep
        self._lines(lines)
        if tail:
            self._hold(tail)

    def _lines(self, lines: list[bytes]) -> None:
        for line in lines:
            if not line:
                if self._data_size:  # an event ends (an over-long one too: it resets)
                    self._dispatch()
            elif line.startswith(b"data:"):
                self._data_line(line)
            # "event:", "id:", "retry:" and ":" comments say nothing the span records.

    def _hold(self, piece: bytes) -> None:
        """Keep the start of a line whose end has not arrived yet (bounded)."""
        if self._skipping_line:
            return
        self._partial_size += len(piece)
        if self._partial_size > MAX_EVENT_BYTES:
            self._partial.clear()
            self._partial_size = 0
            self._skipping_line = True  # bounded memory: drop the line, not the stream
        else:
            self._partial.append(piece)

    def finish(self) -> Answer:
        if self._partial:
            self._lines([b"".join(self._partial)])
            self._partial.clear()
        self._dispatch()  # a stream that ended without the blank line after its last event
        output = None
        if self._content and self._text:
            output = message_json("".join(self._text))
        return Answer(
            model=self._model,
            response_id=self._response_id,
            usage=self._usage,
            output=output,
        )

    def _data_line(self, line: bytes) -> None:
        value = line[6:] if line.startswith(b"data: ") else line[5:]
        self._data_size += len(value)
        if self._data_size > MAX_EVENT_BYTES:
            self._data.clear()  # the event is dropped, its size still counted
        else:
            self._data.append(value)

    def _dispatch(self) -> None:
        data = self._data
        too_large = self._data_size > MAX_EVENT_BYTES
        self._data, self._data_size = [], 0
        if not data or too_large:
            return
        self._event(data[0] if len(data) == 1 else b"\n".join(data))

    def _event(self, event: bytes) -> None:
        if event == _DONE or ((self._settled or self._settle()) and not self._matters(event)):
            return
        try:
            self._read_event(event)
        except msgspec.DecodeError:
            return

    def _read_lone_event(self, chunk: bytes) -> bool:
        """Read a chunk of whole events as one event of one ``data:`` line (after an
        ``event:`` line or not), as upstreams send them, without splitting it into lines;
        False when it is not one (several events, or lines), to be read line by line."""
        if chunk.startswith(b"data: "):
            start = 6
        elif chunk.startswith(b"event:"):
            start = chunk.find(b"\ndata: ") + 7
            if start < 7:
                return False
        else:
            return False
        end = len(chunk) - 2
        if chunk.find(b"\n", start) != end:
            return False
        event = chunk[start:end]
        if event == _DONE:
            return True
        try:
            self._read_event(event)
        except msgspec.DecodeError:
            return False  # not one JSON event (a bare "\r" ending a line?): read it line by line
        return True

    def _settle(self) -> bool:
        # Decoding every event costs a microsecond each. Without content, once the model and
        # the first text are known, only the events that carry usage are still read.
        self._settled = (
            not self._content and self.first_text_at is not None and self._model is not None
        )
        return self._settled

    def _matters(self, events: bytes) -> bool:
        """Whether these whole events may say something a settled reader wants (its API's
        usage); False only when none of them can."""
        return _USAGE_OBJECT.search(events) is not None

    def _read_event(self, event: bytes) -> None:
        chunk = _chunk_decoder.decode(event)
        if self._model is None and chunk.model:
            self._model = chunk.model
        if self._response_id is None and chunk.id:
            self._response_id = chunk.id
        if chunk.usage is not None:
            self._usage = chunk.usage
        if self._content or self.first_text_at is None:
            for choice in chunk.choices:
                if choice.index == 0 and choice.delta is not None and choice.delta.content:
                    self._text_arrived(choice.delta.content)

    def _text_arrived(self, text: str) -> None:
        """A non-empty text delta was read: the first one marks the first token. Each API's
        reader calls this where its events carry text (Chat: a choice's ``delta.content``)."""
        if self.first_text_at is None:
            self.first_text_at = time.perf_counter()
        if self._content:
            room = MAX_OUTPUT_CHARS - self._text_size
            if room > 0:
                if len(text) > room:
                    text = text[:room]
                self._text.append(text)
                self._text_size += len(text)
