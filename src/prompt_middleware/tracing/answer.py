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

import re
import time
from typing import Final

import msgspec

__all__ = [
    "Answer",
    "AnswerReader",
    "JsonAnswerReader",
    "MessagesJsonReader",
    "MessagesStreamReader",
    "ResponsesJsonReader",
    "ResponsesStreamReader",
    "StreamAnswerReader",
    "Usage",
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


# --- a JSON answer ---------------------------------------------------------------------------


_NULL: Final = msgspec.Raw(b"null")


class _Choice(msgspec.Struct):
    message: msgspec.Raw = _NULL  # kept as the JSON text it is (a Raw cannot be optional)


class _Completion(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[_Choice] = msgspec.field(default_factory=list)
    usage: Usage | None = None


_completion_decoder: Final = msgspec.json.Decoder(_Completion)


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
        try:
            return self._answer(b"".join(self._chunks))
        except msgspec.DecodeError:  # not an answer of this API (an error page, another shape)
            return Answer()

    def _answer(self, body: bytes) -> Answer:
        completion = _completion_decoder.decode(body)
        output = None
        if self._content and completion.choices:
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
_encode: Final = msgspec.json.Encoder().encode
_DONE: Final = b"[DONE]"
_USAGE_KEY: Final = b'"usage"'
_BEFORE_VALUE: Final = b" \t\r\n:"
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
        "_skipping_line",
        "_text",
        "_text_size",
        "_usage",
        "first_text_at",
    )

    def __init__(self, *, content: bool) -> None:
        self._content = content
        self.first_text_at: float | None = None
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
        if chunk.endswith(b"\n") and not (self._partial or self._skipping_line or self._after_cr):
            # The usual chunk: whole events, nothing held. Once only a usage object is still
            # wanted, a chunk of whole events that has none is not read at all (a long stream
            # costs a search per chunk, not a microsecond per event).
            if (
                not self._content
                and self.first_text_at is not None
                and self._model is not None
                and not self._data_size
                and chunk.endswith(b"\n\n")
                and _USAGE_OBJECT.search(chunk) is None
            ):
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
            output = _encode({"role": "assistant", "content": "".join(self._text)}).decode()
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
        event = data[0] if len(data) == 1 else b"\n".join(data)
        if event == _DONE or not self._wanted(event):
            return
        try:
            self._read_event(event)
        except msgspec.DecodeError:
            return

    def _read_event(self, event: bytes) -> None:
        self._read(_chunk_decoder.decode(event))

    def _wanted(self, event: bytes) -> bool:
        # Decoding every event costs a microsecond each: without content, only the first
        # (the model), those up to the first text, and the one whose usage is an object (not
        # the null of the others).
        return (
            self._content
            or self.first_text_at is None
            or self._model is None
            or _carries_usage(event)
        )

    def _read(self, chunk: _Chunk) -> None:
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
            self._keep_text(text)

    def _keep_text(self, text: str) -> None:
        room = MAX_OUTPUT_CHARS - self._text_size
        if room <= 0:
            return
        if len(text) > room:
            text = text[:room]
        self._text.append(text)
        self._text_size += len(text)


def _carries_usage(event: bytes) -> bool:
    """Whether ``"usage"`` in the event is followed by an object (the key is near the end)."""
    at = event.rfind(_USAGE_KEY)
    if at < 0:
        return False
    rest = event[at + len(_USAGE_KEY) : at + len(_USAGE_KEY) + 16].lstrip(_BEFORE_VALUE)
    return rest.startswith(b"{")


# --- the Responses API ------------------------------------------------------------------------


class _InputOutputUsage(msgspec.Struct):
    """Usage as Responses and Messages name it."""

    input_tokens: int | None = None
    output_tokens: int | None = None


class _Part(msgspec.Struct):
    type: str = ""
    text: str | None = None


class _OutputItem(msgspec.Struct):
    type: str = ""
    content: list[_Part] = msgspec.field(default_factory=list)


class _Response(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    output: list[_OutputItem] = msgspec.field(default_factory=list)
    usage: _InputOutputUsage | None = None


class _ResponseEvent(msgspec.Struct):
    type: str = ""
    response: _Response | None = None
    delta: str | None = None


_response_decoder: Final = msgspec.json.Decoder(_Response)
_response_event_decoder: Final = msgspec.json.Decoder(_ResponseEvent)


def _usage(usage: _InputOutputUsage | None) -> Usage | None:
    if usage is None:
        return None
    return Usage(prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens)


def _message_json(text: str) -> str:
    return _encode({"role": "assistant", "content": text}).decode()


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
        output = _message_json("".join(texts)) if texts else None
    return Answer(
        model=response.model,
        response_id=response.id,
        usage=_usage(response.usage),
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

    def _wanted(self, event: bytes) -> bool:
        # Without content: up to the first text, then only created and completed.
        return self._content or self.first_text_at is None or b'"response.c' in event

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
        usage = _usage(response.usage)
        if usage is not None:
            self._usage = usage


# --- the Messages API ------------------------------------------------------------------------


class _Message(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    content: list[_Part] = msgspec.field(default_factory=list)
    usage: _InputOutputUsage | None = None


class _MessageEvent(msgspec.Struct):
    type: str = ""
    message: _Message | None = None
    usage: _InputOutputUsage | None = None
    delta: _Part | None = None


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
            output = _message_json("".join(texts)) if texts else None
        return Answer(
            model=message.model,
            response_id=message.id,
            usage=_usage(message.usage),
            output=output,
        )


class MessagesStreamReader(StreamAnswerReader):
    """Anthropic's event stream: input tokens from ``message_start``, output tokens from
    ``message_delta`` (a cumulative count: the last one is the total), text from
    ``content_block_delta``. Cache token counts are not added."""

    __slots__ = ()

    def _wanted(self, event: bytes) -> bool:
        # Without content: up to the first text, then only message_start and message_delta.
        return self._content or self.first_text_at is None or b'"message_' in event

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
                self._usage = _usage(message.usage)
        elif kind == "message_delta" and decoded.usage is not None:
            output_tokens = decoded.usage.output_tokens
            if output_tokens is not None:
                started = self._usage.prompt_tokens if self._usage is not None else None
                self._usage = Usage(prompt_tokens=started, completion_tokens=output_tokens)


# Each API's readers, by the API's name (``apis/``): (JSON answer, event stream).
_READERS: Final[dict[str, tuple[type[JsonAnswerReader], type[StreamAnswerReader]]]] = {
    "chat": (JsonAnswerReader, StreamAnswerReader),
    "responses": (ResponsesJsonReader, ResponsesStreamReader),
    "messages": (MessagesJsonReader, MessagesStreamReader),
}


def reader_for(
    content_type: bytes | str | None, *, content: bool, api: str = "chat"
) -> AnswerReader:
    """The reader for an answer of this ``content-type`` (a stream or a JSON answer) from
    the API named ``api``."""
    if isinstance(content_type, str):
        content_type = content_type.encode("latin-1")
    json_reader, stream_reader = _READERS.get(api, _READERS["chat"])
    if content_type is not None and content_type.lower().startswith(b"text/event-stream"):
        return stream_reader(content=content)
    return json_reader(content=content)
