"""The answers our echo upstream gives and our fake upstream gives, checked against the SDKs'
own types (strict pydantic validation of ``openai.types.responses`` and ``anthropic.types``):
a shape we made up would pass a lenient SDK parse and fail a real client later."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from prompt_middleware.apis import MESSAGES, RESPONSES
from tests.fakes import api_answers

_RESPONSE_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
_MESSAGE_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
TEXT = '{"model":"m","input":"a few words of text"}'


def _events(stream: list[bytes]) -> list[tuple[str, Any]]:
    """(event name, data) of each server-sent event."""
    events = []
    for raw in stream:
        lines = dict(line.split(": ", 1) for line in raw.decode().strip().split("\n"))
        events.append((lines["event"], msgspec.json.decode(lines["data"])))
    return events


@pytest.mark.parametrize("source", ["echo", "fake"])
def test_responses_answers_are_the_sdks_response_and_stream_events(source: str) -> None:
    if source == "echo":
        answer = msgspec.json.decode(RESPONSES.echo_answer("resp_echo1", "m", TEXT))
        stream = RESPONSES.echo_events("resp_echo1", "m", TEXT)
    else:
        answer = api_answers.response("m", TEXT, (3, 4))
        stream = api_answers.response_events("m", TEXT, (3, 4), 3)
    assert Response.model_validate(answer, strict=True).output_text == TEXT
    kinds = []
    for name, data in _events(stream):
        event = _RESPONSE_EVENT.validate_python(data, strict=True)
        assert event.type == name
        kinds.append(name)
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    deltas = [d["delta"] for n, d in _events(stream) if n == "response.output_text.delta"]
    assert "".join(deltas) == TEXT


@pytest.mark.parametrize("source", ["echo", "fake"])
def test_messages_answers_are_the_sdks_message_and_stream_events(source: str) -> None:
    if source == "echo":
        answer = msgspec.json.decode(MESSAGES.echo_answer("msg_echo1", "m", TEXT))
        stream = MESSAGES.echo_events("msg_echo1", "m", TEXT)
    else:
        answer = api_answers.message("m", TEXT, (3, 4))
        stream = api_answers.message_events("m", TEXT, (3, 4), 3)
    message = Message.model_validate(answer, strict=True)
    assert message.content[0].type == "text"
    assert message.content[0].text == TEXT
    kinds = []
    text = []
    for name, data in _events(stream):
        if name == "ping":  # Anthropic's keep-alive, which its SDK skips
            continue
        event = _MESSAGE_EVENT.validate_python(data, strict=True)
        assert event.type == name
        kinds.append(name)
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text.append(event.delta.text)
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert "".join(text) == TEXT


def test_our_anthropic_error_is_the_shape_the_sdk_reads() -> None:
    from anthropic.types import ErrorResponse

    from prompt_middleware.errors import PromptNotFound

    body = MESSAGES.error_json(PromptNotFound("prompt 'x' not found"))
    parsed = ErrorResponse.model_validate(msgspec.json.decode(body))
    assert parsed.type == "error"
    assert parsed.error.type == "not_found_error"
    assert msgspec.json.decode(body)["error"] == {
        "type": "not_found_error",
        "message": "prompt 'x' not found",
        "code": "prompt_not_found",
        "details": {"error_code": "prompt_not_found"},
    }
