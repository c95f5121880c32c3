"""Requests and responses relayed as sent: bodies, statuses, compression, pooling, streaming."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from starlette.types import Message

from prompt_middleware.sidecar.forwarder import Forwarder
from tests.fakes.upstream import CannedResponse, FakeUpstream
from tests.sidecar.forwarder.helpers import CHAT, SAFETY, call, forwarding, scope_for, settings_for


async def test_chat_completion_round_trip(fake: FakeUpstream, upstream: str) -> None:
    timings: list[tuple[int, float]] = []
    body = b'{"model": "gpt-4o",  "messages": [{"role": "user", "content": "caf\xc3\xa9"}]}'
    on_response = lambda status, seconds: timings.append((status, seconds))  # noqa: E731
    async with forwarding(settings_for(upstream), on_upstream_response=on_response) as (
        client,
        _,
    ):
        response = await client.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"
    assert response.json()["choices"][0]["message"]["content"] == body.decode()
    sent = fake.last
    assert (sent.method, sent.path, sent.body) == ("POST", "/v1/chat/completions", body)
    assert sent.header("content-length") == str(len(body))
    assert sent.header("content-type") == "application/json"
    assert sent.header("host") == upstream.removeprefix("http://").removesuffix("/v1")
    assert len(timings) == 1
    assert timings[0][0] == 200
    assert timings[0][1] > 0


async def test_upstream_error_passes_back_byte_for_byte(fake: FakeUpstream, upstream: str) -> None:
    fake.response = CannedResponse(
        500,
        b"upstream exploded \xff <not json>",
        [(b"content-type", b"text/plain"), (b"x-upstream-request-id", b"req-123")],
    )
    async with forwarding(settings_for(upstream)) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 500
    assert response.content == b"upstream exploded \xff <not json>"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["x-upstream-request-id"] == "req-123"
    assert response.headers["content-length"] == str(len(response.content))


async def test_compressed_body_passes_back_compressed(fake: FakeUpstream, upstream: str) -> None:
    compressed = gzip.compress(b'{"object": "list", "data": []}')
    fake.response = CannedResponse(
        200, compressed, [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
    )
    async with (
        forwarding(settings_for(upstream)) as (client, _),
        client.stream("GET", "/v1/models", headers={"accept-encoding": "gzip"}) as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert raw == compressed
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-length"] == str(len(compressed))
    assert fake.last.header("accept-encoding") == "gzip"


@pytest.mark.parametrize(
    ("padding", "declared", "framing"),
    [
        # A small body is gathered and sent with its length, however it arrived.
        (10, False, "content-length"),
        (10, True, "content-length"),
        # A large one is sent on as it arrives: with the client's length, else chunked.
        (100_000, True, "content-length"),
        (100_000, False, "chunked"),
    ],
)
async def test_request_body_in_several_messages(
    fake: FakeUpstream, upstream: str, padding: int, declared: bool, framing: str
) -> None:
    # Driven by hand so that the body really comes in three messages.
    parts = [b'{"model": "gpt-4o", "padding": "', b"x" * padding, b'", "messages": []}']
    headers = [(b"content-type", b"application/json")]
    if declared:
        headers.append((b"content-length", str(sum(map(len, parts))).encode()))
    messages: list[Message] = [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]
    forwarder = Forwarder(settings_for(upstream))
    try:
        sent = await call(forwarder, scope_for("POST", "/v1/chat/completions", headers), messages)
    finally:
        await forwarder.aclose()
    assert sent[0]["status"] == 200
    assert fake.last.body == b"".join(parts)
    if framing == "content-length":
        assert fake.last.headers_named("content-length") == [str(len(fake.last.body))]
        assert fake.last.header("transfer-encoding") is None
    else:
        assert fake.last.header("content-length") is None
        assert fake.last.header("transfer-encoding") == "chunked"


async def test_connections_are_pooled(fake: FakeUpstream, upstream: str) -> None:
    async with forwarding(settings_for(upstream)) as (client, _):
        for _ in range(3):
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    assert len({request.client for request in fake.requests}) == 1


async def test_first_chunk_arrives_before_the_last_is_sent(
    fake: FakeUpstream, upstream: str
) -> None:
    fake.gate = asyncio.Event()
    async with forwarding(settings_for(upstream)) as (client, _):
        request = client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True})
        async with asyncio.timeout(SAFETY), request as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            chunks = response.aiter_raw()
            first = await anext(chunks)
            # The upstream is still holding the rest of its stream.
            assert fake.open_streams == 1
            assert fake.completed == 0
            assert first.startswith(b"data: ")
            assert b'"role":"assistant"' in first
            fake.gate.set()
            rest = b"".join([chunk async for chunk in chunks])
    events = (first + rest).split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    assert len(events) == fake.chunks + 4
    deltas = [json.loads(event[6:])["choices"][0]["delta"] for event in events[1:-3]]
    assert "".join(delta["content"] for delta in deltas) == fake.last.body.decode()
    assert fake.completed == 1
