"""Answers of OpenAI's Responses API and Anthropic's Messages API, as the real services send
them, for the fake upstream (``upstream.py``).

Shapes follow the SDKs' own types (``openai.types.responses.Response`` and its stream events;
``anthropic.types.Message`` and ``RawMessageStreamEvent``): every required field, the event
sequence of a real stream (Responses: created, in_progress, output_item.added,
content_part.added, output_text.delta…, output_text.done, content_part.done, output_item.done,
completed; Messages: message_start, content_block_start, ping, content_block_delta…,
content_block_stop, message_delta, message_stop), each event with its ``event:`` line.
Usage: ``input_tokens`` a token per 4 bytes of the request, ``output_tokens`` one per word.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["message", "message_events", "response", "response_events", "usage_counts"]

RESPONSE_ID = "resp_fake0123"
ITEM_ID = "msg_fake0123"
MESSAGE_ID = "msg_01FakeAnthropic"


def usage_counts(body: bytes, text: str) -> tuple[int, int]:
    return len(body) // 4, len(text.split())


def _split(text: str, pieces: int) -> list[str]:
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


# --- Responses -------------------------------------------------------------------------------


def _output_message(text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": ITEM_ID,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def response(
    model: str, text: str, counts: tuple[int, int] | None, status: str = "completed"
) -> dict[str, Any]:
    usage = None
    if counts is not None:
        usage = {
            "input_tokens": counts[0],
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": counts[1],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": counts[0] + counts[1],
        }
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": [_output_message(text)] if status == "completed" else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def response_events(model: str, text: str, counts: tuple[int, int], pieces: int) -> list[bytes]:
    started = response(model, "", None, "in_progress")
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
        (
            "response.output_item.added",
            {"output_index": 0, "item": _output_message("", "in_progress")},
        ),
        (
            "response.content_part.added",
            {
                "item_id": ITEM_ID,
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []},
            },
        ),
    ]
    place = {"item_id": ITEM_ID, "output_index": 0, "content_index": 0}
    for piece in _split(text, pieces):
        events.append(("response.output_text.delta", {**place, "delta": piece, "logprobs": []}))
    events += [
        ("response.output_text.done", {**place, "text": text, "logprobs": []}),
        (
            "response.content_part.done",
            {**place, "part": {"type": "output_text", "text": text, "annotations": []}},
        ),
        ("response.output_item.done", {"output_index": 0, "item": _output_message(text)}),
        ("response.completed", {"response": response(model, text, counts)}),
    ]
    return [
        _sse(kind, {"type": kind, "sequence_number": number, **data})
        for number, (kind, data) in enumerate(events)
    ]


# --- Messages --------------------------------------------------------------------------------


def message(model: str, text: str, counts: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": counts[0],
            "output_tokens": counts[1],
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def message_events(model: str, text: str, counts: tuple[int, int], pieces: int) -> list[bytes]:
    start = {**message(model, "", counts), "content": [], "stop_reason": None}
    # The real service counts one output token at the start, the total in message_delta.
    start["usage"] = {**start["usage"], "output_tokens": 1}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        for piece in _split(text, pieces)
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": counts[1]},
        },
        {"type": "message_stop"},
    ]
    return [_sse(event["type"], event) for event in events]
