"""A trace backend that refuses or never answers changes no answer and holds up nothing.

1,000 managed requests go through the sidecar (real uvicorn, real upstream fake, the real
OTLP exporter) while the collector hangs: every request is answered 200, the queue fills, and
the spans that found it full are counted in ``/metrics``. No wall-clock assertion: with the
collector hanging, a request that waited on it would never complete at all.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx2
import pytest

from examples.starlette_app.app import PROMPTS
from prompt_middleware import Settings
from prompt_middleware.sidecar import Sidecar
from tests.fakes.otlp import FakeCollector
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream
from tests.tracing.conftest import flushed

QUEUE = 64
BATCH = 8
REQUESTS = 1000
MANAGED = {
    "model": "file/gpt-4o-mini",
    "prompt_id": "support/answer",
    "prompt_variables": {"product": "Acme", "language": "German"},
    "messages": [{"role": "user", "content": "Refund?"}],
}


@pytest.fixture(autouse=True)
def _small_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", str(QUEUE))
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", str(BATCH))


@pytest.fixture
async def sidecar_url(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[str, FakeCollector, Sidecar]]:
    collector = FakeCollector(mode=request.param)
    upstream = FakeUpstream()
    async with collector.serve() as collector_url, serve_in_background(upstream) as upstream_url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector_url)
        settings = Settings(
            prompts_dir=str(PROMPTS), upstream_base_url=upstream_url + "/v1", traces="otlp"
        )
        sidecar = Sidecar(settings)
        async with serve_in_background(sidecar, lifespan="on") as url:
            yield url, collector, sidecar
            collector.release()  # let the stuck export finish before shutdown flushes


async def _send(client: httpx2.AsyncClient, count: int) -> list[int]:
    limit = asyncio.Semaphore(32)

    async def one() -> int:
        async with limit:
            response = await client.post("/v1/chat/completions", json=MANAGED)
            return response.status_code

    return await asyncio.gather(*(one() for _ in range(count)))


async def _dropped(client: httpx2.AsyncClient) -> float:
    metrics = (await client.get("/metrics")).text
    [line] = [
        line
        for line in metrics.splitlines()
        if line.startswith("prompt_middleware_trace_spans_dropped_total ")
    ]
    return float(line.split()[1])


@pytest.mark.parametrize("sidecar_url", ["hang"], indirect=True)
async def test_a_hanging_collector_changes_no_answer_and_drops_are_counted(
    sidecar_url: tuple[str, FakeCollector, Sidecar],
) -> None:
    url, collector, _ = sidecar_url
    async with httpx2.AsyncClient(base_url=url) as client:
        # One full batch wakes the exporter thread, whose export then hangs.
        assert await _send(client, BATCH) == [200] * BATCH
        await collector.wait_for_hanging(1)
        assert await _send(client, REQUESTS - BATCH) == [200] * (REQUESTS - BATCH)
        # The queue holds QUEUE spans; every later one found it full.
        assert await _dropped(client) == REQUESTS - BATCH - QUEUE
    assert collector.spans == []


@pytest.mark.parametrize("sidecar_url", ["refuse"], indirect=True)
async def test_a_refusing_collector_changes_no_answer(
    sidecar_url: tuple[str, FakeCollector, Sidecar],
) -> None:
    url, collector, sidecar = sidecar_url
    async with httpx2.AsyncClient(base_url=url) as client:
        assert await _send(client, 100) == [200] * 100
        tracing = sidecar.middleware.tracing
        assert tracing is not None
        await flushed(tracing)
        assert await _dropped(client) == 0
    assert collector.refused
    assert set(collector.refused) == {500}


async def test_a_collector_that_is_down_changes_no_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: every export is refused
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    # A refused connection is retried after a backoff of about a second; with a shorter
    # deadline the exporter gives each batch up at once instead (the test stays short).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.5")
    upstream = FakeUpstream()
    async with serve_in_background(upstream) as upstream_url:
        settings = Settings(
            prompts_dir=str(PROMPTS), upstream_base_url=upstream_url + "/v1", traces="otlp"
        )
        sidecar = Sidecar(settings)
        async with (
            serve_in_background(sidecar, lifespan="on") as url,
            httpx2.AsyncClient(base_url=url) as client,
        ):
            assert await _send(client, 100) == [200] * 100
            tracing = sidecar.middleware.tracing
            assert tracing is not None
            await asyncio.to_thread(tracing.force_flush)  # returns: the exports gave up
            assert await _dropped(client) >= 0  # counted, whatever the worker kept up with
    assert len(upstream.requests) == 100
