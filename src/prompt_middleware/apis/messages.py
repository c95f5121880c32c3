"""Anthropic's Messages API (``POST …/messages``).

The prompt's system and developer messages become ``system``; its other messages come before
the client's ``messages``. The end user is ``metadata.user_id``; our errors are answered in
Anthropic's shape, so the Anthropic SDK raises its own exception classes (README, "Anthropic
Messages API").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import msgspec

from prompt_middleware.apis.base import ANTHROPIC, NOT_SENT, Api, Param, pieces, sse
from prompt_middleware.errors import RequestError

__all__ = ["MESSAGES", "Messages"]

_encode: Final = msgspec.json.Encoder().encode
_EFFORTS: Final = frozenset({"low", "medium", "high"})
# Chat's tool_choice strings, as Anthropic's objects.
_TOOL_CHOICES: Final = {"auto": "auto", "none": "none", "required": "any"}
# Anthropic's error types, by the status of our error.
_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    502: "api_error",
    504: "timeout_error",
}


class _Metadata(msgspec.Struct):
    user_id: Any = None


_decode_metadata: Final = msgspec.json.Decoder(_Metadata).decode


class _ErrorDetails(msgspec.Struct):
    error_code: str


class _Error(msgspec.Struct):
    type: str
    message: str
    code: str
    details: _ErrorDetails


class _ErrorEnvelope(msgspec.Struct, tag_field="type", tag="error"):
    error: _Error


def _tool(tool: Any) -> Any:
    """A chat tool ``{"type": "function", "function": {…}}`` as an Anthropic tool."""
    if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
        return tool  # already in Anthropic's shape, or a server tool
    function = tool["function"]
    converted: dict[str, Any] = {"name": function.get("name")}
    if "description" in function:
        converted["description"] = function["description"]
    parameters = function.get("parameters")
    converted["input_schema"] = parameters if parameters is not None else {"type": "object"}
    if "strict" in function:
        converted["strict"] = function["strict"]
    return converted


def _tools(tools: Any) -> Any:
    return [_tool(tool) for tool in tools] if isinstance(tools, list) else tools


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        kind = _TOOL_CHOICES.get(choice)
        return NOT_SENT if kind is None else {"type": kind}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    return choice


def _stop_sequences(stop: Any) -> Any:
    return [stop] if isinstance(stop, str) else stop


def _output_format(response_format: Any) -> Any:
    if (
        isinstance(response_format, dict)
        and response_format.get("type") == "json_schema"
        and isinstance(response_format.get("json_schema"), dict)
        and "schema" in response_format["json_schema"]
    ):
        return {"type": "json_schema", "schema": response_format["json_schema"]["schema"]}
    return NOT_SENT  # json_object and text have no counterpart


def _effort(effort: Any) -> Any:
    return effort if effort in _EFFORTS else NOT_SENT


def _single_tool_use(parallel: Any) -> Any:
    return True if parallel is False else NOT_SENT


class Messages(Api):
    name = "messages"
    route_suffix = "/messages"
    provider = ANTHROPIC
    conversation = "messages"
    system_slot = "system"
    default_client_messages = "append"
    parameters = MappingProxyType(
        {
            "max_completion_tokens": Param(("max_tokens",)),
            "stop": Param(("stop_sequences",), _stop_sequences),
            "tools": Param(("tools",), _tools),
            "tool_choice": Param(("tool_choice",), _tool_choice),
            "response_format": Param(("output_config", "format"), _output_format),
            "reasoning_effort": Param(("output_config", "effort"), _effort),
            "parallel_tool_calls": Param(
                ("tool_choice", "disable_parallel_tool_use"), _single_tool_use, {"type": "auto"}
            ),
        }
    )
    native_parameters = frozenset(
        {
            "cache_control",
            "container",
            "inference_geo",
            "max_tokens",
            "metadata",
            "output_config",
            "service_tier",
            "stop_sequences",
            "temperature",
            "thinking",
            "top_k",
            "top_p",
        }
    )

    def user_key(self, fields: Mapping[str, msgspec.Raw]) -> msgspec.Raw | None:
        raw = fields.get("metadata")
        if raw is None:
            return None
        try:
            user = _decode_metadata(raw).user_id
        except msgspec.DecodeError:
            return None
        return None if user is None else msgspec.Raw(_encode(user))

    def echo_answer(self, answer_id: str, model: str, text: str) -> bytes:
        return _encode(_message(answer_id, model, [{"type": "text", "text": text}], "end_turn"))

    def echo_events(self, answer_id: str, model: str, text: str) -> list[bytes]:
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": _message(answer_id, model, [], None)},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ]
        events += [
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
            for piece in pieces(text)
        ]
        events += [
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 0},
            },
            {"type": "message_stop"},
        ]
        return [sse(event["type"], event) for event in events]

    def error_json(self, error: RequestError) -> bytes:
        """Anthropic's error: ``{"type": "error", "error": {"type", "message", "code",
        "details": {"error_code"}}}``."""
        body = _Error(
            type=_ERROR_TYPES.get(error.status_code, "api_error"),
            message=error.message,
            code=error.code,
            details=_ErrorDetails(error_code=error.code),
        )
        return _encode(_ErrorEnvelope(error=body))


def _message(
    answer_id: str, model: str, content: list[dict[str, Any]], stop_reason: str | None
) -> dict[str, Any]:
    return {
        "id": answer_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }


MESSAGES: Final = Messages()
