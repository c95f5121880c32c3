"""The sidecar driven by the real ``openai`` and ``anthropic`` SDKs on the Responses and Messages
APIs, in front of a fake upstream that answers as those APIs do: what crosses each wire.

Two real uvicorn servers on 127.0.0.1 — the fake upstream and the sidecar. What is asserted is
the bytes and headers the upstream received and what each SDK parsed from the answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import openai
import pytest

from prompt_middleware import Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream

SIDECAR_KEY = "sk-sidecar-secret"
OPENAI_KEY = "sk-openai-upstream"
ANTHROPIC_KEY = "sk-ant-upstream"
SUPPORT = """\
type: chat
prompt:
  - role: system
    content: You help with {{product}}.
  - role: developer
    content: Answer in {{language}}.
  - role: user
    content: "Order: {{order}}"
config:
  model: model-from-prompt
  max_tokens: 300
  temperature: 0.2
  stop: END
  seed: 7
  reasoning_effort: low
"""
# A prompt once saved at OpenAI, moved into the folder under its id.
SAVED = """\
type: chat
prompt:
  - role: system
    content: You write haiku about {{topic}}.
config:
  model: gpt-4o-mini
"""
VARIABLES = {"product": "Acme", "language": "German", "order": "A-17"}
SYSTEM_TEXT = "You help with Acme.\n\nAnswer in German."


@dataclass
class Running:
    openai: openai.AsyncOpenAI
    anthropic: anthropic.AsyncAnthropic
    upstream: FakeUpstream
    url: str


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    (tmp_path / "support.yaml").write_text(SUPPORT)
    (tmp_path / "pmpt_68b0c1d2e3f4.yaml").write_text(SAVED)
    upstream = FakeUpstream()
    async with serve_in_background(upstream) as upstream_url:
        settings = Settings(
            prompts_dir=str(tmp_path),
            upstream_base_url=upstream_url + "/v1",
            upstream_api_key=Secret(OPENAI_KEY),
            anthropic_api_key=Secret(ANTHROPIC_KEY),
            api_keys=(Secret(SIDECAR_KEY),),
        )
        sidecar = Sidecar(settings)
        async with serve_in_background(sidecar, lifespan="on") as url:
            clients = Running(
                openai.AsyncOpenAI(api_key=SIDECAR_KEY, base_url=url + "/v1", max_retries=0),
                anthropic.AsyncAnthropic(api_key=SIDECAR_KEY, base_url=url, max_retries=0),
                upstream,
                url,
            )
            yield clients
            await clients.openai.close()
            await clients.anthropic.close()


# --- Responses -------------------------------------------------------------------------------


async def test_responses_with_extra_body(running: Running) -> None:
    response = await running.openai.responses.create(
        model="gpt-4o",
        input="Where is it?",
        instructions="Replaced by the prompt's.",
        store=False,
        extra_body={"prompt_id": "support", "prompt_variables": VARIABLES},
    )
    received = running.upstream.last
    assert received.path == "/v1/responses"
    assert received.header("authorization") == f"Bearer {OPENAI_KEY}"
    # The client's fields in the SDK's order, the prompt's parameters after them.
    assert received.body == (
        b'{"model":"model-from-prompt","input":[{"role":"user","content":"Order: A-17"},'
        b'{"role":"user","content":"Where is it?"}],'
        b'"instructions":"You help with Acme.\\n\\nAnswer in German.","store":false,'
        b'"max_output_tokens":300,"temperature":0.2,"reasoning":{"effort":"low"}}'
    )
    # The SDK parsed the fake's answer, whose text is what the upstream was sent.
    assert response.output_text == received.body.decode()
    assert response.usage is not None
    assert response.usage.output_tokens == len(received.body.decode().split())


async def test_responses_streamed_with_openais_prompt_object(running: Running) -> None:
    stream = await running.openai.responses.create(
        model="gpt-4o",
        input=[{"role": "user", "content": "autumn, please"}],
        prompt={"id": "pmpt_68b0c1d2e3f4", "variables": {"topic": "rain"}},
        stream=True,
    )
    deltas, completed = [], None
    async for event in stream:
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type == "response.completed":
            completed = event.response
    received = running.upstream.last
    assert received.body == (
        b'{"model":"gpt-4o-mini","stream":true,"input":[{"role":"user","content":'
        b'"autumn, please"}],"instructions":"You write haiku about rain."}'
    )
    assert "".join(deltas) == received.body.decode()
    assert completed is not None
    assert completed.output_text == received.body.decode()


async def test_an_unknown_openai_prompt_is_a_404_that_says_where_to_put_it(
    running: Running,
) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        await running.openai.responses.create(
            model="gpt-4o", input="Hi", prompt={"id": "pmpt_gone"}
        )
    assert raised.value.code == "prompt_not_found"
    assert "OpenAI shut down its saved prompts" in str(raised.value.message)
    assert running.upstream.requests == []


# --- Messages --------------------------------------------------------------------------------


async def test_messages_with_the_anthropic_sdk(running: Running) -> None:
    message = await running.anthropic.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=50,
        system="Replaced by the prompt's.",
        messages=[{"role": "user", "content": "Where is it?"}],
        metadata={"user_id": "user-1"},
        extra_body={"prompt_id": "support", "prompt_variables": VARIABLES},
        extra_headers={"anthropic-version": "2023-06-01", "anthropic-beta": "output-128k"},
    )
    received = running.upstream.last
    assert received.path == "/v1/messages"
    # Exactly one credential, the configured one, as x-api-key; the sidecar's key stays here.
    assert received.headers_named("x-api-key") == [ANTHROPIC_KEY]
    assert received.header("authorization") is None
    assert SIDECAR_KEY not in json.dumps(received.headers)
    assert received.header("anthropic-version") == "2023-06-01"
    assert received.header("anthropic-beta") == "output-128k"
    assert received.body == (
        b'{"max_tokens":300,"messages":[{"role":"user","content":"Order: A-17"},'
        b'{"role":"user","content":"Where is it?"}],"model":"model-from-prompt",'
        b'"metadata":{"user_id":"user-1"},'
        b'"system":"You help with Acme.\\n\\nAnswer in German.",'
        b'"temperature":0.2,"stop_sequences":["END"],"output_config":{"effort":"low"}}'
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == received.body.decode()
    assert message.usage.input_tokens == len(received.body) // 4


async def test_messages_streamed(running: Running) -> None:
    stream = await running.anthropic.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=50,
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        extra_body={"prompt_id": "pmpt_68b0c1d2e3f4", "prompt_variables": {"topic": "snow"}},
    )
    text, kinds = [], []
    async for event in stream:
        kinds.append(event.type)
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text.append(event.delta.text)
    received = running.upstream.last
    assert received.body == (
        b'{"max_tokens":50,"messages":[{"role":"user","content":"Hi"}],"model":"gpt-4o-mini",'
        b'"stream":true,"system":"You write haiku about snow."}'
    )
    assert "".join(text) == received.body.decode()
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"


async def test_an_unknown_prompt_raises_the_anthropic_sdks_not_found_error(
    running: Running,
) -> None:
    with pytest.raises(anthropic.NotFoundError) as raised:
        await running.anthropic.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=10,
            messages=[],
            extra_body={"prompt_id": "nowhere"},
        )
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    assert body["error"]["code"] == "prompt_not_found"
    assert body["error"]["details"] == {"error_code": "prompt_not_found"}
    assert running.upstream.requests == []


async def test_a_bad_request_raises_the_anthropic_sdks_bad_request_error(
    running: Running,
) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        await running.anthropic.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=10,
            messages=[],
            extra_body={"prompt_id": "support", "prompt_version": "1", "prompt_label": "x"},
        )
    assert raised.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


async def test_a_wrong_sidecar_key_on_messages_is_anthropics_authentication_error(
    running: Running,
) -> None:
    client = anthropic.AsyncAnthropic(api_key="wrong", base_url=running.url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        await client.messages.create(model="m", max_tokens=1, messages=[])
    await client.close()
    assert running.upstream.requests == []


async def test_count_tokens_goes_to_the_anthropic_upstream_unmanaged(running: Running) -> None:
    counted = await running.anthropic.messages.count_tokens(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Hi"}],
        extra_body={"prompt_id": "support"},
    )
    received = running.upstream.last
    assert received.path == "/v1/messages/count_tokens"
    assert received.headers_named("x-api-key") == [ANTHROPIC_KEY]
    assert received.header("authorization") is None
    assert b'"prompt_id":"support"' in received.body  # never managed: sent as it came
    assert counted.input_tokens == len(received.body) // 4
