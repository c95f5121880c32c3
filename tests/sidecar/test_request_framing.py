"""Odd but valid HTTP from a client: Expect: 100-continue, chunked request bodies."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.fakes.raw_upstream import (
    SAFETY,
    chunk,
)
from tests.sidecar.client_rig import (
    ANSWER,
    CHUNKED_BODIES,
    JSON,
    MANAGED,
    REWRITTEN,
    URL,
    RawClient,
    json_head,
    request_head,
    sidecar_rig,
)


async def test_expect_100_continue_gets_its_continue_and_the_rewrite() -> None:
    async with sidecar_rig() as r:
        assert r.upstream is not None
        client = await RawClient.connect(r.url)
        async with asyncio.timeout(SAFETY):
            await client.send(json_head(len(MANAGED), expect="100-continue"))
            # The body is sent only once the server asks for it.
            assert await client.reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            await client.send(MANAGED)
            status, headers, body = await client.read_response()
        assert (status, headers["x-prompt-name"]) == (200, "greeting")
        assert body == ANSWER
        (sent,) = r.upstream.requests
        assert sent.body == REWRITTEN
        assert sent.header("content-length") == str(len(REWRITTEN))
        assert sent.header("expect") is None  # answered by us, not passed on
        await client.close()
        await r.assert_clean(pooled=1)


async def test_expect_100_continue_over_the_body_limit_is_refused_without_a_continue() -> None:
    async with sidecar_rig(max_body_bytes=1000) as r:
        assert r.upstream is not None
        client = await RawClient.connect(r.url)
        async with asyncio.timeout(SAFETY):
            await client.send(json_head(5000, expect="100-continue"))
            # No "100 Continue": the answer comes before the body is ever sent.
            status, _, body = await client.read_response()
        assert status == 413
        assert json.loads(body)["error"]["code"] == "request_too_large"
        assert r.upstream.accepted == 0
        await client.close()
        await r.assert_clean()


@pytest.mark.parametrize("case", list(CHUNKED_BODIES))
async def test_a_chunked_request_body_reaches_the_upstream_with_a_content_length(
    case: str,
) -> None:
    sent_body, expected = CHUNKED_BODIES[case]
    async with sidecar_rig() as r:
        assert r.upstream is not None
        client = await RawClient.connect(r.url)
        head = request_head(URL, {"content-type": JSON, "transfer-encoding": "chunked"})
        async with asyncio.timeout(SAFETY):
            await client.send(head)
            # Three chunks in three writes, one with a chunk extension, then the last chunk.
            await client.send(chunk(sent_body[:7]))
            await client.send(b"%x;ext=1\r\n%s\r\n" % (len(sent_body[7:20]), sent_body[7:20]))
            await client.send(chunk(sent_body[20:]) + chunk(b""))
            status, _, _ = await client.read_response()
        assert status == 200
        (sent,) = r.upstream.requests
        assert sent.body == expected
        assert sent.header("content-length") == str(len(expected))
        assert sent.header("transfer-encoding") is None
        await client.close()
        await r.assert_clean(pooled=1)
