"""A client that leaves reaches nothing it had not reached yet, cancels what it had, and leaves
no task, descriptor or upstream connection behind (raw sockets, real uvicorn).
"""

from __future__ import annotations

import asyncio
import json

import pytest
import structlog

from prompt_middleware import Settings
from prompt_middleware.sidecar import Sidecar
from tests.conftest import RecordingApp
from tests.fakes.memory import text_prompt
from tests.fakes.raw_upstream import (
    SAFETY,
    Peer,
    RawUpstream,
    Resources,
    settle,
)
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream
from tests.sidecar.client_rig import (
    MANAGED,
    MANAGED_STREAM,
    PARTIAL_BODIES,
    REWRITTEN,
    RawClient,
    Rig,
    Tracked,
    exchange,
    json_head,
    memory_store,
    middleware_rig,
    request_head,
    sidecar_rig,
)


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("framing", list(PARTIAL_BODIES))
@pytest.mark.parametrize("target", ["sidecar", "middleware"])
async def test_a_client_leaving_before_its_body_is_complete_reaches_nothing(
    target: str, framing: str, how: str
) -> None:
    app = RecordingApp()
    rig = sidecar_rig() if target == "sidecar" else middleware_rig(app)
    async with rig as r:
        client = await RawClient.connect(r.url)
        await client.send(PARTIAL_BODIES[framing])
        await client.close(how)
        async with asyncio.timeout(SAFETY):  # a safety net: the request ends by itself
            assert await settle(lambda: r.tracked.finished == 1)
        assert app.requests == []
        assert r.store.total_calls == 0
        if r.upstream is not None:
            assert r.upstream.accepted == 0
        await r.assert_clean()


async def test_a_client_leaving_mid_upload_cancels_the_upstream_request() -> None:
    # Past 64 KiB the forwarder streams a body on as it arrives (an upload to /v1/files):
    # the upstream has the request already when the client goes; its connection must close.

    async def swallow(peer: Peer) -> None:
        await peer.reader.readuntil(b"\r\n\r\n")
        await peer.until_eof()

    with structlog.testing.capture_logs() as logs:
        async with RawUpstream(swallow) as upstream:
            tracked = Tracked(Sidecar(Settings(upstream_base_url=upstream.url), stores={}))
            async with serve_in_background(tracked, lifespan="on") as url:
                baseline = Resources.baseline()
                client = await RawClient.connect(url)
                head = request_head("/v1/files", {"content-length": str(1_000_000)})
                await client.send(head + b"x" * 200_000)
                assert await settle(lambda: upstream.extra_bytes > 65_536)
                await client.close()
                await Rig(url, tracked, baseline, upstream).assert_clean()
                assert tracked.finished == 1
    assert upstream.accepted == 1
    assert upstream.extra_bytes <= 200_000
    assert any(log["event"] == "client_disconnected" for log in logs)


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_client_leaving_mid_stream_cancels_the_upstream_stream(how: str) -> None:
    fake = FakeUpstream()
    fake.gate = asyncio.Event()  # never set: without the client leaving, it streams forever
    async with serve_in_background(fake) as upstream_url:
        settings = Settings(upstream_base_url=upstream_url + "/v1")
        tracked = Tracked(Sidecar(settings, stores={"mem": memory_store()}))
        async with serve_in_background(tracked, lifespan="on") as url:
            baseline = Resources.baseline()
            client = await RawClient.connect(url)
            await client.send(json_head(len(MANAGED_STREAM)) + MANAGED_STREAM)
            async with asyncio.timeout(SAFETY):
                status, headers = await client.read_head()
                assert (status, headers["x-prompt-name"]) == (200, "greeting")
                assert b"data: " in await client.reader.read(65536)
                await client.close(how)
                await fake.stream_cancelled.wait()
            assert (fake.open_streams, fake.completed, fake.cancelled) == (0, 0, 1)
            assert json.loads(fake.last.body) == {**json.loads(REWRITTEN), "stream": True}
            await Rig(url, tracked, baseline).assert_clean()


@pytest.mark.parametrize("pooled", [False, True])
async def test_a_client_leaving_while_its_prompt_is_fetched_is_not_sent_upstream(
    pooled: bool,
) -> None:
    async with sidecar_rig() as r:
        assert r.upstream is not None
        r.store.put(text_prompt("farewell", "Bye {{name}}"))
        if pooled:  # an earlier request leaves an idle keep-alive connection to the upstream
            await exchange(r.url, MANAGED)
        r.store.gate = asyncio.Event()
        client = await RawClient.connect(r.url)
        abandoned = MANAGED.replace(b'"greeting"', b'"farewell"')
        await client.send(json_head(len(abandoned)) + abandoned)
        assert await settle(lambda: r.store.total_calls == 1 + pooled)
        await client.close()
        r.store.gate.set()  # the prompt arrives after its client has gone
        assert await settle(lambda: r.tracked.finished == 1 + pooled)
        if pooled:
            # A request after it, on the same pooled connection: the upstream has read
            # whatever came before it.
            await exchange(r.url, MANAGED)
            assert [request.body for request in r.upstream.requests] == [REWRITTEN] * 2
            assert r.upstream.accepted == 1  # and the pooled connection is still good
            await r.assert_clean(pooled=1)
        else:
            await r.assert_clean()  # the upstream read all it was sent before it closed
            assert r.upstream.requests == []
