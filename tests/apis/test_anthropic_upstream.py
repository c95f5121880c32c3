"""Where ``/v1/messages`` goes and with which key (README, "Three APIs"): the model-list entry's
``api_base`` and ``api_key``, else PROMPT_MIDDLEWARE_ANTHROPIC_BASE_URL and _API_KEY, else the
OpenAI-style upstream and the client's own key — always exactly one credential, ``x-api-key``."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import pytest

from prompt_middleware import ModelEntry, Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream

MESSAGE: Any = [{"role": "user", "content": "Hi"}]


@asynccontextmanager
async def sidecar_with(
    settings_for: Callable[[str, str], Settings],
) -> AsyncIterator[tuple[str, FakeUpstream, FakeUpstream]]:
    """A sidecar whose settings know two upstreams: (its URL, the OpenAI-style one, the
    Anthropic one)."""
    openai_style, anthropic_style = FakeUpstream(), FakeUpstream()
    async with (
        serve_in_background(openai_style) as openai_url,
        serve_in_background(anthropic_style) as anthropic_url,
    ):
        sidecar = Sidecar(settings_for(openai_url + "/v1", anthropic_url + "/v1"))
        async with serve_in_background(sidecar, lifespan="on") as url:
            yield url, openai_style, anthropic_style


async def _ask(url: str, key: str, **extra: Any) -> None:
    async with anthropic.AsyncAnthropic(api_key=key, base_url=url, max_retries=0) as client:
        await client.messages.create(model="claude", max_tokens=5, messages=MESSAGE, **extra)


async def test_the_anthropic_base_url_and_key_from_the_environment() -> None:
    def settings(openai_url: str, anthropic_url: str) -> Settings:
        return Settings(
            upstream_base_url=openai_url,
            upstream_api_key=Secret("sk-openai"),
            anthropic_base_url=anthropic_url,
            anthropic_api_key=Secret("sk-ant-configured"),
        )

    async with sidecar_with(settings) as (url, openai_style, anthropic_style):
        await _ask(url, "sk-ant-client", extra_headers={"x-api-key": "sk-ant-other"})
    assert openai_style.requests == []
    received = anthropic_style.last
    assert received.headers_named("x-api-key") == ["sk-ant-configured"]
    assert received.headers_named("authorization") == []


async def test_without_a_configured_key_the_clients_bearer_key_goes_as_x_api_key() -> None:
    def settings(openai_url: str, anthropic_url: str) -> Settings:
        return Settings(upstream_base_url=openai_url, upstream_api_key=Secret("sk-openai"))

    async with sidecar_with(settings) as (url, openai_style, _):
        await _ask(url, "sk-ant-client")  # today's SDK sends it as Authorization: Bearer
    received = openai_style.last  # no Anthropic upstream: the one of every other path
    assert received.path == "/v1/messages"
    assert received.headers_named("x-api-key") == ["sk-ant-client"]
    assert received.headers_named("authorization") == []


async def test_a_clients_x_api_key_is_passed_on_as_it_is() -> None:
    def settings(openai_url: str, anthropic_url: str) -> Settings:
        return Settings(anthropic_base_url=anthropic_url)

    async with sidecar_with(settings) as (url, _, anthropic_style):
        await _ask(url, "ignored", extra_headers={"x-api-key": "sk-ant-own", "authorization": ""})
    assert anthropic_style.last.headers_named("x-api-key") == ["sk-ant-own"]


async def test_a_model_list_entry_names_the_upstream_and_its_key() -> None:
    def settings(openai_url: str, anthropic_url: str) -> Settings:
        entry = ModelEntry(
            model_name="claude",
            model="claude-sonnet-4-5",
            api_base=anthropic_url,
            api_key=Secret("sk-ant-entry"),
            params={"max_completion_tokens": 64, "temperature": 0.3},
        )
        return Settings(
            upstream_base_url=openai_url,
            anthropic_api_key=Secret("sk-ant-configured"),
            model_list=(entry,),
        )

    async with sidecar_with(settings) as (url, openai_style, anthropic_style):
        await _ask(url, "sk-ant-client")
    assert openai_style.requests == []
    received = anthropic_style.last
    assert received.headers_named("x-api-key") == ["sk-ant-entry"]
    assert received.headers_named("authorization") == []
    # The entry's defaults under the Messages API's names; the request's max_tokens wins.
    assert received.body == (
        b'{"max_tokens":5,"messages":[{"role":"user","content":"Hi"}],'
        b'"model":"claude-sonnet-4-5","temperature":0.3}'
    )


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
async def test_the_sidecars_key_is_accepted_in_either_header_and_never_passed_on(
    header: str,
) -> None:
    def settings(openai_url: str, anthropic_url: str) -> Settings:
        return Settings(
            anthropic_base_url=anthropic_url,
            anthropic_api_key=Secret("sk-ant-configured"),
            api_keys=(Secret("sk-sidecar"),),
        )

    value = "Bearer sk-sidecar" if header == "authorization" else "sk-sidecar"
    async with sidecar_with(settings) as (url, _, anthropic_style):
        await _ask(url, "unused", extra_headers={header: value})
    received = anthropic_style.last
    assert received.headers_named("x-api-key") == ["sk-ant-configured"]
    assert "sk-sidecar" not in repr(received.headers)


async def test_an_unreachable_anthropic_upstream_is_a_502_in_anthropics_shape() -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    sidecar = Sidecar(Settings(anthropic_base_url=f"http://127.0.0.1:{port}/v1"))
    async with serve_in_background(sidecar, lifespan="on") as url:
        with pytest.raises(anthropic.InternalServerError) as raised:
            await _ask(url, "sk-ant-client")
    assert raised.value.status_code == 502
    assert raised.value.body == {
        "type": "error",
        "error": {
            "type": "api_error",
            "message": raised.value.body["error"]["message"],  # type: ignore[index]
            "code": "upstream_unavailable",
            "details": {"error_code": "upstream_unavailable"},
        },
    }
