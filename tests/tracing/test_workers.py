"""``prompt-middleware serve --workers 2`` with a collector that hangs: the spans each worker
drops are counted, and every scrape of ``/metrics`` shows the sum over both workers.

Each worker's first span wakes its export thread, whose export then hangs; its queue (4)
fills and every later span of that worker is dropped. Which worker answers a connection is the
kernel's choice, so batches of concurrent requests (a connection each) go until both exports
hang and both queues are full: from then on the sum is exact — every request made a span, two
hang, eight wait — and a count of one worker alone would show less.
"""

from __future__ import annotations

import asyncio
import re

import httpx2

from tests.fakes.otlp import FakeCollector
from tests.fakes.sidecars import Sidecar, running_sidecars

QUEUE = 4
BATCH = 8
DEADLINE = 60.0  # a hang detector: each batch is a real round trip
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}


async def _batch(http: httpx2.AsyncClient, sidecar: Sidecar) -> int:
    url = f"{sidecar.url}/v1/chat/completions"
    answers = await asyncio.gather(*(http.post(url, json=BODY) for _ in range(BATCH)))
    assert {answer.status_code for answer in answers} == {200}
    return BATCH


def _dropped(metrics: str) -> float:
    found = re.search(r"^prompt_middleware_trace_spans_dropped_total (\S+)$", metrics, re.M)
    assert found is not None, metrics
    return float(found.group(1))


async def test_spans_dropped_by_both_workers_are_summed() -> None:
    collector = FakeCollector(mode="hang")
    async with collector.serve() as collector_url:
        env = {
            "PROMPT_MIDDLEWARE_TRACES": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url,
            "OTEL_BSP_MAX_QUEUE_SIZE": str(QUEUE),
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1",
        }
        async with (
            running_sidecars(1, env, workers=2) as [sidecar],
            httpx2.AsyncClient(limits=httpx2.Limits(max_keepalive_connections=0)) as http,
        ):
            sent = 0
            async with asyncio.timeout(DEADLINE):
                while collector.hanging < 2:  # until each worker's export hangs
                    sent += await _batch(http, sidecar)
                while True:  # until both queues are full: the sum is then exact
                    sent += await _batch(http, sidecar)
                    metrics = (await http.get(f"{sidecar.url}/metrics")).text
                    if _dropped(metrics) == sent - 2 - 2 * QUEUE:
                        break
            sent += await _batch(http, sidecar)
            scrapes = await asyncio.gather(*(http.get(f"{sidecar.url}/metrics") for _ in range(6)))
            # Whichever worker answers, the same total: one worker's own count would be less.
            assert {_dropped(scrape.text) for scrape in scrapes} == {sent - 2 - 2 * QUEUE}
            collector.release()  # the workers' last exports end before they stop
    assert collector.spans  # what was queued left once the collector answered
