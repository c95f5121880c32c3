"""Where each API gets the prompt's messages (README, "Three APIs"): the system slot, the
prompt's other messages before the client's conversation (copied byte for byte), the
placeholder rule, a continued Responses conversation, OpenAI's ``prompt`` object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from prompt_middleware import Settings
from prompt_middleware.apis import MESSAGES, RESPONSES, Api
from prompt_middleware.engine import RewriteEngine
from prompt_middleware.errors import InvalidPromptRequest, InvalidRequest, PromptNotFound
from tests.fakes.memory import MemoryStore, chat_prompt, text_prompt

STORE_PROMPTS = (
    chat_prompt(
        "support",
        [
            ("system", "You help with {{product}}."),
            ("developer", "Answer in {{language}}."),
            ("user", "My order:"),
            ("assistant", "Which one?"),
        ],
        config={"model": "claude-sonnet-4-5", "max_tokens": 300},
    ),
    chat_prompt("around", [("system", "Be brief."), "messages", ("user", "Thanks.")]),
    chat_prompt("plain", [("user", "Hello.")]),
    text_prompt("pmpt_6870a1b2c3", "Greet {{name}}.", version=1),
    text_prompt("pmpt_6870a1b2c3", "Greet {{name}} warmly.", version=2, labels=()),
)
# Odd spacing and key order: the client's items must arrive exactly as sent.
CLIENT_ITEMS = b'[ {"content":"hi","role":"user"} ,{"type":"input_text"} ]'


@pytest.fixture
async def rewrite() -> AsyncIterator[Any]:
    engines: list[RewriteEngine] = []

    async def run(api: Api, body: bytes, settings: Settings | None = None) -> bytes:
        store = MemoryStore(*STORE_PROMPTS)
        engine = RewriteEngine(settings or Settings(default_store="mem"), stores={"mem": store})
        engines.append(engine)
        result = await engine.rewrite(body, api=api)
        assert result is not None
        return result.body

    yield run
    for engine in engines:
        await engine.aclose()


VARIABLES = b'"prompt_variables":{"product":"Acme","language":"German"}'
INSTRUCTIONS = b'"instructions":"You help with Acme.\\n\\nAnswer in German."'
PROMPT_ITEMS = b'{"role":"user","content":"My order:"},{"role":"assistant","content":"Which one?"}'


async def test_responses_system_text_becomes_instructions_and_the_prompt_opens_input(
    rewrite: Any,
) -> None:
    body = (
        b'{"model":"gpt-4o","prompt_id":"support",' + VARIABLES + b',"instructions":"Mine.",'
        b'"input":' + CLIENT_ITEMS + b',"store":false,"metadata":{"a":"1e-7"}}'
    )
    sent = await rewrite(RESPONSES, body)
    assert sent == (
        b'{"model":"claude-sonnet-4-5",'
        + INSTRUCTIONS
        + b',"input":['
        + PROMPT_ITEMS
        + b","
        + CLIENT_ITEMS[1:-1]
        + b'],"store":false,"metadata":{"a":"1e-7"},"max_output_tokens":300}'
    )


async def test_a_string_input_is_one_user_message_after_the_prompts(rewrite: Any) -> None:
    body = b'{"model":"m","prompt_id":"support",' + VARIABLES + b',"input":"Where is \\u00e9?"}'
    sent = await rewrite(RESPONSES, body)
    assert sent == (
        b'{"model":"claude-sonnet-4-5","input":['
        + PROMPT_ITEMS
        + b',{"role":"user","content":"Where is \\u00e9?"}],'
        + INSTRUCTIONS
        + b',"max_output_tokens":300}'
    )


async def test_a_continued_conversation_gets_only_the_system_slot_model_and_parameters(
    rewrite: Any,
) -> None:
    for field in (b'"previous_response_id":"resp_1"', b'"conversation":"conv_1"'):
        body = (
            b'{"model":"m","prompt_id":"support",' + VARIABLES + b"," + field + b',"input":"More."}'
        )
        sent = await rewrite(RESPONSES, body)
        assert sent == (
            b'{"model":"claude-sonnet-4-5",'
            + field
            + b',"input":"More.",'
            + INSTRUCTIONS
            + b',"max_output_tokens":300}'
        )


async def test_a_prompt_without_system_messages_leaves_the_clients_instructions(
    rewrite: Any,
) -> None:
    body = b'{"model":"m","prompt_id":"plain","instructions":"Mine.","input":"Hi"}'
    sent = await rewrite(RESPONSES, body)
    assert sent == (
        b'{"model":"m","instructions":"Mine.","input":[{"role":"user","content":"Hello."},'
        b'{"role":"user","content":"Hi"}]}'
    )


async def test_messages_system_slot_and_order(rewrite: Any) -> None:
    body = (
        b'{"model":"m","prompt_id":"support",' + VARIABLES + b',"system":[{"type":"text",'
        b'"text":"Mine."}],"messages":'
        + CLIENT_ITEMS
        + b',"max_tokens":9,"metadata":{"user_id":"u1"}}'
    )
    sent = await rewrite(MESSAGES, body)
    assert sent == (
        b'{"model":"claude-sonnet-4-5","system":"You help with Acme.\\n\\nAnswer in German.",'
        b'"messages":[' + PROMPT_ITEMS + b"," + CLIENT_ITEMS[1:-1] + b'],"max_tokens":300,'
        b'"metadata":{"user_id":"u1"}}'
    )


async def test_the_placeholder_takes_the_clients_conversation_on_both_apis(rewrite: Any) -> None:
    sent = await rewrite(RESPONSES, b'{"model":"m","prompt_id":"around","input":"Hi"}')
    assert sent == (
        b'{"model":"m","input":[{"role":"user","content":"Hi"},{"role":"user","content":'
        b'"Thanks."}],"instructions":"Be brief."}'
    )
    sent = await rewrite(
        MESSAGES, b'{"model":"m","prompt_id":"around","messages":' + CLIENT_ITEMS + b"}"
    )
    assert sent == (
        b'{"model":"m","messages":[' + CLIENT_ITEMS[1:-1] + b',{"role":"user","content":'
        b'"Thanks."}],"system":"Be brief."}'
    )


async def test_client_messages_ignore_applies_to_every_api_when_set(rewrite: Any) -> None:
    settings = Settings(default_store="mem", client_messages="ignore")
    sent = await rewrite(
        MESSAGES, b'{"model":"m","prompt_id":"plain","messages":[{"x":1}]}', settings
    )
    assert sent == b'{"model":"m","messages":[{"role":"user","content":"Hello."}]}'


async def test_openais_prompt_object_names_the_prompt_its_version_and_variables(
    rewrite: Any,
) -> None:
    body = (
        b'{"model":"gpt-4o","prompt":{"id":"pmpt_6870a1b2c3","version":"2","variables":'
        b'{"name":{"type":"input_text","text":"Ada"}}},"input":"Hi"}'
    )
    sent = await rewrite(RESPONSES, body)
    assert sent == (
        b'{"model":"gpt-4o","input":[{"role":"user","content":"Greet Ada warmly."},'
        b'{"role":"user","content":"Hi"}]}'
    )
    plain = b'{"model":"m","prompt":{"id":"pmpt_6870a1b2c3","variables":{"name":"Bo"}}}'
    assert await rewrite(RESPONSES, plain) == (
        b'{"model":"m","input":[{"role":"user","content":"Greet Bo."}]}'
    )


async def test_a_prompt_object_refuses_other_input_types_and_a_second_prompt_id(
    rewrite: Any,
) -> None:
    image = (
        b'{"model":"m","prompt":{"id":"pmpt_6870a1b2c3","variables":{"photo":'
        b'{"type":"input_image","image_url":"https://x/y.png"}}}}'
    )
    with pytest.raises(InvalidPromptRequest, match=r"'photo'.*'input_image'"):
        await rewrite(RESPONSES, image)
    both = b'{"model":"m","prompt":{"id":"pmpt_6870a1b2c3"},"prompt_id":"plain"}'
    with pytest.raises(InvalidPromptRequest, match="not both"):
        await rewrite(RESPONSES, both)
    with pytest.raises(InvalidRequest, match="'prompt' must be an object"):
        await rewrite(RESPONSES, b'{"model":"m","prompt":"pmpt_1"}')


async def test_an_unknown_openai_prompt_id_says_where_to_put_the_prompt(rewrite: Any) -> None:
    with pytest.raises(PromptNotFound) as raised:
        await rewrite(RESPONSES, b'{"model":"m","prompt":{"id":"pmpt_unknown"}}')
    message = raised.value.message
    assert "not found" in message
    assert "OpenAI shut down its saved prompts" in message
    assert "prompt folder" in message
    with pytest.raises(PromptNotFound) as other:
        await rewrite(RESPONSES, b'{"model":"m","prompt_id":"nothing"}')
    assert "OpenAI" not in other.value.message


async def test_no_extension_field_is_left(rewrite: Any) -> None:
    body = (
        b'{"model":"mem/m","prompt_id":"plain","prompt_label":"production","prompt_variables":{},'
        b'"langfuse_public_key":"pk","messages":[],"max_tokens":3}'
    )
    sent = await rewrite(MESSAGES, body)
    assert sent == b'{"model":"m","messages":[{"role":"user","content":"Hello."}],"max_tokens":3}'
