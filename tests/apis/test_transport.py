"""``PromptTransport`` on an ``httpx2`` client (no ``type: ignore``) under the real SDKs, on the
Responses and Messages APIs: the same rewrite as the sidecar's, in process. The wrapped
transport is the fake upstream itself (an ASGI app), so what it received is asserted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from prompt_middleware import ModelEntry, PromptTransport, Secret, Settings
from tests.fakes.upstream import FakeUpstream

PROMPT = """\
type: chat
prompt:
  - role: system
    content: You help with {{product}}.
  - role: user
    content: Hello.
config:
  model: prompt-model
  max_tokens: 40
  tool_choice: required
"""


@dataclass
class Clients:
    openai: openai.AsyncOpenAI
    anthropic: anthropic.AsyncAnthropic
    upstream: FakeUpstream


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[Clients]:
    (tmp_path / "helper.yaml").write_text(PROMPT)
    upstream = FakeUpstream()
    entry = ModelEntry(
        model_name="claude-entry",
        model="claude-sonnet-4-5",
        api_base="http://anthropic-entry.test/v1",
        api_key=Secret("sk-ant-entry"),
    )
    transport = PromptTransport(
        httpx2.ASGITransport(app=upstream),
        Settings(prompts_dir=str(tmp_path), model_list=(entry,)),
    )
    http_client = httpx2.AsyncClient(transport=transport)
    running = Clients(
        openai.AsyncOpenAI(
            api_key="sk-oa", base_url="http://upstream.test/v1", http_client=http_client
        ),
        anthropic.AsyncAnthropic(
            api_key="sk-ant", base_url="http://upstream.test", http_client=http_client
        ),
        upstream,
    )
    yield running
    await http_client.aclose()
    await transport.aclose()


VARIABLES = {"prompt_id": "helper", "prompt_variables": {"product": "Acme"}}


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_through_the_transport(clients: Clients, stream: bool) -> None:
    if stream:
        events = await clients.openai.responses.create(
            model="m", input="Hi", stream=True, extra_body=VARIABLES
        )
        text = "".join([e.delta async for e in events if e.type == "response.output_text.delta"])
    else:
        response = await clients.openai.responses.create(
            model="m", input="Hi", extra_body=VARIABLES
        )
        text = response.output_text
    received = clients.upstream.last
    assert received.path == "/v1/responses"
    assert received.header("authorization") == "Bearer sk-oa"
    streamed = b'"stream":true,' if stream else b""
    assert received.body == (
        b'{"model":"prompt-model",' + streamed + b'"input":[{"role":"user","content":"Hello."},'
        b'{"role":"user","content":"Hi"}],"instructions":"You help with Acme.",'
        b'"max_output_tokens":40,"tool_choice":"required"}'
    )
    assert text == received.body.decode()


async def test_responses_with_openais_prompt_object(clients: Clients) -> None:
    response = await clients.openai.responses.create(
        model="m", prompt={"id": "helper", "variables": {"product": "Bolt"}}
    )
    assert clients.upstream.last.json()["instructions"] == "You help with Bolt."
    assert "prompt" not in clients.upstream.last.json()
    assert response.output_text == clients.upstream.last.body.decode()


@pytest.mark.parametrize("stream", [False, True])
async def test_messages_through_the_transport(clients: Clients, stream: bool) -> None:
    if stream:
        async with clients.anthropic.messages.stream(
            model="m",
            max_tokens=5,
            messages=[{"role": "user", "content": "Hi"}],
            extra_body=VARIABLES,
        ) as events:
            text = await events.get_final_text()
    else:
        message = await clients.anthropic.messages.create(
            model="m",
            max_tokens=5,
            messages=[{"role": "user", "content": "Hi"}],
            extra_body=VARIABLES,
        )
        assert message.content[0].type == "text"
        text = message.content[0].text
    received = clients.upstream.last
    assert received.path == "/v1/messages"
    streamed = b',"stream":true' if stream else b""
    assert received.body == (
        b'{"max_tokens":40,"messages":[{"role":"user","content":"Hello."},{"role":"user",'
        b'"content":"Hi"}],"model":"prompt-model"' + streamed + b',"system":"You help with Acme.",'
        b'"tool_choice":{"type":"any"}}'
    )
    assert text == received.body.decode()


async def test_an_unknown_prompt_raises_the_anthropic_sdks_not_found_error(
    clients: Clients,
) -> None:
    with pytest.raises(anthropic.NotFoundError) as raised:
        await clients.anthropic.messages.create(
            model="m", max_tokens=5, messages=[], extra_body={"prompt_id": "nowhere"}
        )
    assert raised.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert clients.upstream.requests == []


async def test_a_model_list_entry_sends_messages_with_its_key_as_x_api_key(
    clients: Clients,
) -> None:
    # The entry's api_base is not the fake's host, but the wrapped transport is the fake:
    # what matters is the URL and the headers it was sent.
    await clients.anthropic.messages.create(
        model="claude-entry", max_tokens=5, messages=[{"role": "user", "content": "Hi"}]
    )
    received = clients.upstream.last
    assert received.header("host") == "anthropic-entry.test"
    assert received.path == "/v1/messages"
    assert received.headers_named("x-api-key") == ["sk-ant-entry"]
    assert received.headers_named("authorization") == []
