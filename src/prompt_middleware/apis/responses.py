"""OpenAI's Responses API (``POST …/responses``).

The prompt's system and developer messages become ``instructions``; its other messages open
``input`` (a string ``input`` is one user message; a list is kept item by item, byte for
byte), except on a turn that continues a stored conversation (``previous_response_id`` or
``conversation``), which already holds them. OpenAI's own ``prompt`` object names the prompt
as ``prompt_id``, ``prompt_version`` and ``prompt_variables`` do (README, "Responses API").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import msgspec

from prompt_middleware.apis.base import NOT_SENT, Api, Param, pieces, sse
from prompt_middleware.errors import InvalidPromptRequest, InvalidRequest
from prompt_middleware.request import RequestFields

__all__ = ["RESPONSES", "Responses"]

_encode: Final = msgspec.json.Encoder().encode
_QUOTE: Final = ord('"')
_USER_OPEN: Final = msgspec.Raw(b'{"role":"user","content":')
_NULL_RAW: Final = msgspec.Raw(b"null")


class _PromptObject(msgspec.Struct, forbid_unknown_fields=False):
    id: str
    version: str | int | None = None
    variables: dict[str, Any] | None = None


_decode_prompt: Final = msgspec.json.Decoder(_PromptObject).decode


def _function_tool(tool: Any) -> Any:
    """A chat tool ``{"type": "function", "function": {…}}`` as a Responses function tool."""
    if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
        return tool  # already in the Responses shape, or a built-in tool
    function = tool["function"]
    converted: dict[str, Any] = {"type": "function", "name": function.get("name")}
    if "description" in function:
        converted["description"] = function["description"]
    # Chat's functions are not strict unless asked; Responses' are, unless told otherwise.
    converted["parameters"] = function.get("parameters")
    converted["strict"] = function.get("strict", False)
    return converted


def _tools(tools: Any) -> Any:
    return [_function_tool(tool) for tool in tools] if isinstance(tools, list) else tools


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


def _text_format(response_format: Any) -> Any:
    """Chat's ``response_format`` as ``text.format``."""
    if not isinstance(response_format, dict):
        return NOT_SENT
    kind = response_format.get("type")
    if kind == "json_schema" and isinstance(response_format.get("json_schema"), dict):
        return {"type": "json_schema", **response_format["json_schema"]}
    if kind in ("json_object", "text"):
        return {"type": kind}
    return NOT_SENT


class Responses(Api):
    name = "responses"
    route_suffix = "/responses"
    provider = "openai"
    conversation = "input"
    system_slot = "instructions"
    default_client_messages = "append"
    prepares = True
    parameters = MappingProxyType(
        {
            "max_tokens": Param(("max_output_tokens",)),
            "max_completion_tokens": Param(("max_output_tokens",)),
            "tools": Param(("tools",), _tools),
            "tool_choice": Param(("tool_choice",), _tool_choice),
            "response_format": Param(("text", "format"), _text_format),
            "reasoning_effort": Param(("reasoning", "effort")),
            "verbosity": Param(("text", "verbosity")),
        }
    )
    native_parameters = frozenset(
        {
            "background",
            "include",
            "max_output_tokens",
            "max_tool_calls",
            "metadata",
            "parallel_tool_calls",
            "prompt_cache_key",
            "prompt_cache_retention",
            "reasoning",
            "safety_identifier",
            "service_tier",
            "store",
            "temperature",
            "text",
            "top_logprobs",
            "top_p",
            "truncation",
            "user",
        }
    )

    def prepare(self, fields: RequestFields) -> RequestFields:
        raw = fields.get("prompt")
        if raw is None or raw == _NULL_RAW:
            return fields
        if "prompt_id" in fields:
            raise InvalidPromptRequest(
                "Give 'prompt' or 'prompt_id', not both: each names the prompt to use.",
                param="prompt",
            )
        try:
            prompt = _decode_prompt(raw)
        except msgspec.DecodeError:
            raise InvalidRequest(
                "'prompt' must be an object with a string 'id' (and optionally 'version' and "
                "'variables').",
                param="prompt",
            ) from None
        prepared = {name: value for name, value in fields.items() if name != "prompt"}
        prepared["prompt_id"] = msgspec.Raw(_encode(prompt.id))
        if prompt.version is not None:
            prepared["prompt_version"] = msgspec.Raw(_encode(prompt.version))
        if prompt.variables is not None:
            prepared["prompt_variables"] = msgspec.Raw(_encode(_variables(prompt.variables)))
        return prepared

    def client_conversation(self, fields: RequestFields) -> list[Any] | None:
        raw = fields.get("input")
        if raw is not None and memoryview(raw)[0] == _QUOTE:  # a string: one user message
            return [msgspec.Raw(bytes(_USER_OPEN) + bytes(raw) + b"}")]
        return Api.client_conversation(self, fields)  # not super(): this runs per request

    def continues_conversation(self, fields: RequestFields) -> bool:
        # Written out, not any(...): this runs on every managed Responses request.
        previous = fields.get("previous_response_id")
        if previous is not None and previous != _NULL_RAW:
            return True
        conversation = fields.get("conversation")
        return conversation is not None and conversation != _NULL_RAW

    def user_key(self, fields: Mapping[str, msgspec.Raw]) -> msgspec.Raw | None:
        user = fields.get("user")
        return user if user is not None else fields.get("safety_identifier")

    def echo_answer(self, answer_id: str, model: str, text: str) -> bytes:
        return _encode(_response(answer_id, model, text, "completed"))

    def echo_events(self, answer_id: str, model: str, text: str) -> list[bytes]:
        item_id = "msg_" + answer_id.removeprefix("resp_")
        created = _response(answer_id, model, "", "in_progress")
        events: list[tuple[str, dict[str, Any]]] = [("response.created", {"response": created})]
        for piece in pieces(text):
            delta = {
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": piece,
                "logprobs": [],
            }
            events.append(("response.output_text.delta", delta))
        completed = _response(answer_id, model, text, "completed")
        events.append(("response.completed", {"response": completed}))
        return [
            sse(kind, {"type": kind, "sequence_number": number, **event})
            for number, (kind, event) in enumerate(events)
        ]


def _variables(variables: dict[str, Any]) -> dict[str, Any]:
    """The ``prompt`` object's variables as ``prompt_variables``: ``input_text`` is its text."""
    converted: dict[str, Any] = {}
    for name, value in variables.items():
        if isinstance(value, dict):
            kind = value.get("type")
            if kind != "input_text" or not isinstance(value.get("text"), str):
                raise InvalidPromptRequest(
                    f"Variable '{name}' of 'prompt' is of type {kind!r}: only strings and "
                    "input_text variables fill a managed prompt.",
                    param="prompt",
                )
            value = value["text"]
        converted[name] = value
    return converted


def _response(answer_id: str, model: str, text: str, status: str) -> dict[str, Any]:
    """A ``response`` object holding one assistant message of ``text`` (none while in
    progress)."""
    output = []
    if status == "completed":
        message = {
            "id": "msg_" + answer_id.removeprefix("resp_"),
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        output.append(message)
    return {
        "id": answer_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 0,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 0,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 0,
        }
        if status == "completed"
        else None,
    }


RESPONSES: Final = Responses()
