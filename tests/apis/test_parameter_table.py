"""Every row of the parameter table (README, "Three APIs"): a chat name in a prompt's config,
as the Responses and Messages upstreams get it — the exact bytes of the rewritten body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from prompt_middleware import Settings
from prompt_middleware.apis import CHAT, MESSAGES, RESPONSES, Api
from prompt_middleware.engine import RewriteEngine
from tests.fakes.memory import MemoryStore, text_prompt

LOOKUP_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {"id": {"type": "string"}}}
TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Find an order.",
        "parameters": LOOKUP_PARAMETERS,
    },
}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}
JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True, "description": "A reply."},
}


@pytest.fixture
async def rewrite() -> AsyncIterator[Any]:
    """``rewrite(api, config, **body)``: the body sent on for a prompt with this config."""
    engines: list[RewriteEngine] = []

    async def run(
        api: Api, config: dict[str, Any], settings: Settings | None = None, **body: Any
    ) -> Any:
        store = MemoryStore(text_prompt("p", "Hi.", config=config))
        engine = RewriteEngine(settings or Settings(default_store="mem"), stores={"mem": store})
        engines.append(engine)
        request = {"model": "m", "prompt_id": "p", **body}
        result = await engine.rewrite(msgspec.json.encode(request), api=api)
        assert result is not None
        return result.body

    yield run
    for engine in engines:
        await engine.aclose()


def _params(body: bytes) -> dict[str, Any]:
    """The body without model and conversation: what the parameters became."""
    decoded: dict[str, Any] = msgspec.json.decode(body)
    for name in ("model", "input", "messages"):
        decoded.pop(name, None)
    return decoded


RESPONSES_ROWS = [
    ({"max_tokens": 50}, {"max_output_tokens": 50}),
    ({"max_completion_tokens": 60}, {"max_output_tokens": 60}),
    ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}),
    ({"stop": ["END"]}, {}),
    (
        {"tools": [TOOL]},
        {
            "tools": [
                {
                    "type": "function",
                    "name": "lookup",
                    "description": "Find an order.",
                    "parameters": LOOKUP_PARAMETERS,
                    "strict": False,
                }
            ]
        },
    ),
    (
        {"tools": [{"type": "function", "function": {"name": "now", "strict": True}}]},
        {"tools": [{"type": "function", "name": "now", "parameters": None, "strict": True}]},
    ),
    ({"tool_choice": "auto"}, {"tool_choice": "auto"}),
    ({"tool_choice": "none"}, {"tool_choice": "none"}),
    ({"tool_choice": "required"}, {"tool_choice": "required"}),
    (
        {"tool_choice": {"type": "function", "function": {"name": "lookup"}}},
        {"tool_choice": {"type": "function", "name": "lookup"}},
    ),
    (
        {"response_format": JSON_SCHEMA},
        {
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "reply",
                    "schema": SCHEMA,
                    "strict": True,
                    "description": "A reply.",
                }
            }
        },
    ),
    ({"response_format": {"type": "json_object"}}, {"text": {"format": {"type": "json_object"}}}),
    ({"reasoning_effort": "low"}, {"reasoning": {"effort": "low"}}),
    ({"parallel_tool_calls": False}, {"parallel_tool_calls": False}),
    (
        {"seed": 1, "n": 2, "presence_penalty": 0.1, "frequency_penalty": 0.1, "logit_bias": {}},
        {},
    ),
    # The API's own names pass as they are; a key of no API is not sent.
    (
        {"max_output_tokens": 70, "truncation": "auto", "notes": "for the team"},
        {"max_output_tokens": 70, "truncation": "auto"},
    ),
]

MESSAGES_ROWS = [
    ({"max_tokens": 50}, {"max_tokens": 50}),
    ({"max_completion_tokens": 60}, {"max_tokens": 60}),
    ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "top_p": 0.9}),
    ({"stop": "END"}, {"stop_sequences": ["END"]}),
    ({"stop": ["A", "B"]}, {"stop_sequences": ["A", "B"]}),
    (
        {"tools": [TOOL]},
        {
            "tools": [
                {
                    "name": "lookup",
                    "description": "Find an order.",
                    "input_schema": LOOKUP_PARAMETERS,
                }
            ]
        },
    ),
    (
        {
            "tools": [
                {"type": "function", "function": {"name": "now", "parameters": {}, "strict": True}}
            ]
        },
        {"tools": [{"name": "now", "input_schema": {}, "strict": True}]},
    ),
    ({"tool_choice": "auto"}, {"tool_choice": {"type": "auto"}}),
    ({"tool_choice": "none"}, {"tool_choice": {"type": "none"}}),
    ({"tool_choice": "required"}, {"tool_choice": {"type": "any"}}),
    (
        {"tool_choice": {"type": "function", "function": {"name": "lookup"}}},
        {"tool_choice": {"type": "tool", "name": "lookup"}},
    ),
    (
        {"response_format": JSON_SCHEMA},
        {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
    ),
    ({"response_format": {"type": "json_object"}}, {}),
    ({"reasoning_effort": "high"}, {"output_config": {"effort": "high"}}),
    ({"reasoning_effort": "minimal"}, {}),
    (
        {"parallel_tool_calls": False},
        {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
    ),
    (
        {"parallel_tool_calls": False, "tool_choice": "required"},
        {"tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
    ),
    ({"parallel_tool_calls": True}, {}),
    (
        {"seed": 1, "n": 2, "presence_penalty": 0.1, "frequency_penalty": 0.1, "logit_bias": {}},
        {},
    ),
    (
        {"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}, "user": "u"},
        {"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}},
    ),
]


@pytest.mark.parametrize(("config", "sent"), RESPONSES_ROWS)
async def test_a_config_parameter_reaches_the_responses_api_under_its_name(
    rewrite: Any, config: dict[str, Any], sent: dict[str, Any]
) -> None:
    assert _params(await rewrite(RESPONSES, config)) == sent


@pytest.mark.parametrize(("config", "sent"), MESSAGES_ROWS)
async def test_a_config_parameter_reaches_the_messages_api_under_its_name(
    rewrite: Any, config: dict[str, Any], sent: dict[str, Any]
) -> None:
    assert _params(await rewrite(MESSAGES, config)) == sent


async def test_the_prompts_parameters_win_over_the_requests_by_default(rewrite: Any) -> None:
    body = await rewrite(
        MESSAGES,
        {"max_tokens": 50, "reasoning_effort": "low"},
        max_tokens=9,
        output_config={"effort": "high", "format": None},
    )
    assert _params(body) == {"max_tokens": 50, "output_config": {"effort": "low", "format": None}}


async def test_with_request_precedence_the_requests_fields_and_members_win(rewrite: Any) -> None:
    settings = Settings(default_store="mem", param_precedence="request")
    body = await rewrite(
        RESPONSES,
        {"max_tokens": 50, "temperature": 0.5, "reasoning_effort": "low", "verbosity": "low"},
        settings,
        max_output_tokens=9,
        text={"verbosity": "high"},
    )
    assert _params(body) == {
        "max_output_tokens": 9,
        "temperature": 0.5,
        "reasoning": {"effort": "low"},
        "text": {"verbosity": "high"},
    }


async def test_chat_keeps_its_parameters_as_they_are(rewrite: Any) -> None:
    config = {"max_tokens": 5, "stop": "x", "seed": 3, "notes": "n", "max_output_tokens": 4}
    body = await rewrite(CHAT, config)
    assert body == (
        b'{"model":"m","messages":[{"role":"user","content":"Hi."}],'
        b'"max_tokens":5,"stop":"x","seed":3}'
    )
