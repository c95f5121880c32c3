"""Reading an answer as it passes: a JSON completion, and an SSE stream split anywhere."""

from __future__ import annotations

import json

import pytest

from prompt_middleware.tracing import content_type_of
from prompt_middleware.tracing.answer import (
    MAX_EVENT_BYTES,
    MAX_JSON_ANSWER_BYTES,
    MAX_OUTPUT_CHARS,
    Answer,
    JsonAnswerReader,
    StreamAnswerReader,
    Usage,
    reader_for,
)

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Bonjour", "refusal": None},
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 12,
        "completion_tokens": 3,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
}


def _chunk(content: str | None, *, usage: object = None, finish: str | None = None) -> bytes:
    choices = (
        []
        if content is None and finish is None
        else [
            {"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}
        ]
    )
    event = {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": choices,
        "usage": usage,
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


STREAM = (
    _chunk("Bon")
    + b": a comment line\n\n"
    + _chunk("jour")
    + _chunk(None, finish="stop")
    + _chunk(None, usage={"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22})
    + b"data: [DONE]\n\n"
)
STREAM_ANSWER = Answer(
    model="gpt-4o-mini-2024-07-18",
    response_id="chatcmpl-2",
    usage=Usage(prompt_tokens=20, completion_tokens=2),
    output='{"role":"assistant","content":"Bonjour"}',
)


def _read_stream(pieces: list[bytes], *, content: bool = True) -> Answer:
    reader = StreamAnswerReader(content=content)
    for piece in pieces:
        reader.feed(piece)
    return reader.finish()


# --- JSON ------------------------------------------------------------------------------------


def test_json_answer_gives_model_usage_and_the_message_as_sent() -> None:
    body = json.dumps(COMPLETION).encode()
    reader = JsonAnswerReader(content=True)
    for start in range(0, len(body), 7):  # any chunking
        reader.feed(body[start : start + 7])
    answer = reader.finish()
    assert answer.model == "gpt-4o-2024-08-06"
    assert answer.response_id == "chatcmpl-1"
    assert answer.usage == Usage(prompt_tokens=12, completion_tokens=3)
    assert answer.output is not None
    assert json.loads(answer.output) == COMPLETION["choices"][0]["message"]  # type: ignore[index]


def test_json_answer_without_content_keeps_no_message() -> None:
    reader = JsonAnswerReader(content=False)
    reader.feed(json.dumps(COMPLETION).encode())
    answer = reader.finish()
    assert answer.output is None
    assert answer.usage == Usage(prompt_tokens=12, completion_tokens=3)


@pytest.mark.parametrize(
    "body", [b"", b"<html>bad gateway</html>", b'{"error": {"code": "x"}}', b'{"model": 5}']
)
def test_a_body_that_is_not_a_completion_gives_an_empty_answer(body: bytes) -> None:
    reader = JsonAnswerReader(content=True)
    reader.feed(body)
    assert reader.finish() in (Answer(), Answer(model=None))


def test_a_json_answer_past_the_bound_is_not_kept() -> None:
    reader = JsonAnswerReader(content=True)
    reader.feed(b" " * MAX_JSON_ANSWER_BYTES)
    reader.feed(json.dumps(COMPLETION).encode())
    assert reader.finish() == Answer()


# --- SSE -------------------------------------------------------------------------------------


def test_stream_gives_model_usage_and_the_text() -> None:
    assert _read_stream([STREAM]) == STREAM_ANSWER


def test_stream_split_at_every_byte_offset_reads_the_same() -> None:
    for offset in range(len(STREAM) + 1):
        assert _read_stream([STREAM[:offset], STREAM[offset:]]) == STREAM_ANSWER, offset


def test_stream_fed_byte_by_byte_reads_the_same() -> None:
    assert _read_stream([STREAM[i : i + 1] for i in range(len(STREAM))]) == STREAM_ANSWER


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_other_line_endings_split_anywhere_read_the_same(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    for offset in range(len(stream) + 1):
        assert _read_stream([stream[:offset], stream[offset:]]) == STREAM_ANSWER, offset


def test_an_event_of_several_data_lines_split_anywhere() -> None:
    event = json.dumps({"model": "m", "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    head, tail = event[:10], event[10:]
    stream = f"event: message\r\ndata: {head}\r\ndata:{tail}\r\n\r\n".encode()
    expected = Answer(model="m", usage=Usage(prompt_tokens=1, completion_tokens=2))
    for offset in range(len(stream) + 1):
        # The two data lines join with "\n", inside JSON whitespace: still one object.
        assert _read_stream([stream[:offset], stream[offset:]]) == expected, offset


@pytest.mark.parametrize("content", [True, False])
def test_a_stream_fed_in_whole_events_reads_the_same_however_they_are_grouped(
    content: bool,
) -> None:
    # Upstreams send an event per chunk (read without splitting lines), or several at once.
    events = [event + b"\n\n" for event in STREAM[:-2].split(b"\n\n")]
    expected = (
        STREAM_ANSWER
        if content
        else Answer(
            model=STREAM_ANSWER.model,
            response_id=STREAM_ANSWER.response_id,
            usage=STREAM_ANSWER.usage,
        )
    )
    assert _read_stream(events, content=content) == expected
    for cut in range(1, len(events)):
        pieces = [b"".join(events[:cut]), b"".join(events[cut:])]
        assert _read_stream(pieces, content=content) == expected, cut


def test_an_event_of_several_data_lines_in_one_chunk() -> None:
    event = json.dumps({"model": "m", "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    for head in ("", "event: message\n"):
        chunk = f"{head}data: {event[:10]}\ndata: {event[10:]}\n\n".encode()
        expected = Answer(model="m", usage=Usage(prompt_tokens=1, completion_tokens=2))
        assert _read_stream([chunk]) == expected, head


def test_without_content_only_the_model_and_usage_events_are_read() -> None:
    answer = _read_stream([STREAM], content=False)
    assert answer.output is None
    assert answer.usage == Usage(prompt_tokens=20, completion_tokens=2)
    assert answer.model == "gpt-4o-mini-2024-07-18"


def test_a_stream_without_include_usage_has_no_usage() -> None:
    stream = _chunk("Hi") + _chunk(None, finish="stop") + b"data: [DONE]\n\n"
    answer = _read_stream([stream])
    assert answer.usage is None
    assert answer.output == '{"role":"assistant","content":"Hi"}'


def test_the_last_event_without_its_blank_line_is_read() -> None:
    usage = {"prompt_tokens": 4, "completion_tokens": 5}
    stream = _chunk("Hi") + _chunk(None, usage=usage).rstrip(b"\n")
    assert _read_stream([stream]).usage == Usage(prompt_tokens=4, completion_tokens=5)


def test_a_usage_key_inside_the_text_is_not_mistaken_for_usage() -> None:
    stream = _chunk('the "usage": {x} policy') + b"data: [DONE]\n\n"
    answer = _read_stream([stream], content=False)
    assert answer.usage is None


def test_malformed_events_are_skipped() -> None:
    stream = b"data: {not json\n\ndata: [1, 2]\n\n" + STREAM
    assert _read_stream([stream]) == STREAM_ANSWER


def test_an_over_long_line_is_dropped_and_the_stream_still_read() -> None:
    long_line = b"data: " + b"x" * (MAX_EVENT_BYTES + 10) + b"\n\n"
    pieces = [long_line[i : i + 65536] for i in range(0, len(long_line), 65536)]
    assert _read_stream([*pieces, STREAM]) == STREAM_ANSWER


def test_the_output_text_is_bounded() -> None:
    big = "a" * 1000
    stream = b"".join(_chunk(big) for _ in range(MAX_OUTPUT_CHARS // 1000 + 5))
    answer = _read_stream([stream])
    assert answer.output is not None
    assert len(json.loads(answer.output)["content"]) == MAX_OUTPUT_CHARS


def test_reader_for_picks_the_stream_reader_by_content_type() -> None:
    assert isinstance(
        reader_for(b"text/event-stream; charset=utf-8", content=True), StreamAnswerReader
    )
    assert isinstance(reader_for("Text/Event-Stream", content=True), StreamAnswerReader)
    assert isinstance(reader_for(b"application/json", content=True), JsonAnswerReader)
    assert isinstance(reader_for(None, content=True), JsonAnswerReader)
    assert isinstance(reader_for(b"TEXT/EVENT-STREAM", content=True), StreamAnswerReader)
    assert isinstance(reader_for(b"text/event", content=True), JsonAnswerReader)
    assert isinstance(reader_for(b"", content=True), JsonAnswerReader)


def test_the_content_type_of_an_answer_is_found_in_any_case() -> None:
    json_type = (b"content-type", b"application/json")
    assert content_type_of([(b"x-request-id", b"1"), json_type]) == b"application/json"
    assert content_type_of([(b"Content-Type", b"text/event-stream")]) == b"text/event-stream"
    assert content_type_of([(b"content-length", b"2"), (b"x-content-type", b"no")]) is None
    assert content_type_of([]) is None
