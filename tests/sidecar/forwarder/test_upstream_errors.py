"""An upstream that cannot be reached or does not answer in time: 502 and 504, or a cut stream."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import httpx2
import pytest
import structlog

from prompt_middleware.settings import Secret
from tests.fakes.upstream import FakeUpstream
from tests.sidecar.forwarder.helpers import (
    CHAT,
    SAFETY,
    SETTINGS_KEY,
    _SilentResolver,
    error_of,
    forwarding,
    settings_for,
)


async def test_refused_connection_is_502() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        settings = settings_for(
            f"http://127.0.0.1:{port}/v1", upstream_api_key=Secret(SETTINGS_KEY)
        )
        with structlog.testing.capture_logs() as logs:
            async with forwarding(settings) as (client, _):
                response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "upstream_unavailable"
    assert f"127.0.0.1:{port}" in error["message"]
    assert SETTINGS_KEY not in response.text
    assert SETTINGS_KEY not in repr(logs)
    assert any(log["event"] == "upstream_request_failed" for log in logs)


async def test_connect_timeout_is_502() -> None:
    settings = settings_for("http://llm.example.test/v1", upstream_connect_timeout_seconds=0.2)

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(resolver=_SilentResolver())
        return aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async with forwarding(settings, session_factory=session) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "upstream_unavailable"
    assert "llm.example.test" in error["message"]
    assert "PROMPT_MIDDLEWARE_UPSTREAM_CONNECT_TIMEOUT_SECONDS" in error["message"]


async def test_no_response_in_time_is_504(fake: FakeUpstream, upstream: str) -> None:
    fake.hold_headers = asyncio.Event()  # never set: the upstream never answers
    settings = settings_for(upstream, upstream_timeout_seconds=0.2)
    async with forwarding(settings) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 504
        error = error_of(response)
        assert error["code"] == "upstream_timeout"
        assert "PROMPT_MIDDLEWARE_UPSTREAM_TIMEOUT_SECONDS" in error["message"]
        # The forwarder gave up on the request: the upstream sees its client leave.
        async with asyncio.timeout(SAFETY):
            await fake.stream_cancelled.wait()


async def test_the_optional_total_timeout_is_504(fake: FakeUpstream, upstream: str) -> None:
    fake.hold_headers = asyncio.Event()  # never set: the upstream never answers
    settings = settings_for(upstream, upstream_total_timeout_seconds=0.2)
    async with forwarding(settings) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 504
        error = error_of(response)
        assert error["code"] == "upstream_timeout"
        assert "PROMPT_MIDDLEWARE_UPSTREAM_TOTAL_TIMEOUT_SECONDS" in error["message"]


async def test_upstream_dropping_mid_stream_ends_the_clients_stream(
    fake: FakeUpstream, upstream: str
) -> None:
    fake.drop_after = 2
    received: list[bytes] = []

    async def read_all(response: httpx2.Response) -> None:
        async for chunk in response.aiter_raw():
            received.append(chunk)

    with structlog.testing.capture_logs() as logs:
        async with forwarding(settings_for(upstream)) as (client, _):
            request = client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True})
            async with asyncio.timeout(SAFETY), request as response:
                assert response.status_code == 200
                with pytest.raises(httpx2.RemoteProtocolError):
                    await read_all(response)
    assert b"".join(received).count(b"data: ") == 2
    assert b"[DONE]" not in b"".join(received)
    assert any(log["event"] == "upstream_stream_failed" for log in logs)
