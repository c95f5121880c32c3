"""``prompt-middleware serve --workers 2``, for real: an invalidation received by one worker
reaches the other without Redis, and every scrape of ``/metrics`` shows the sum of both.

Which worker answers a connection is the kernel's choice: the tests send batches of
concurrent requests, each on its own connection, until the Langfuse fake has been asked by
both workers (each worker's cache asks once), so both are known to hold the prompt.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx2
import pytest

from tests.fakes.langfuse_webhooks import WebhookLangfuse as FakeLangfuse
from tests.fakes.server import serve_in_background
from tests.fakes.sidecars import Sidecar, running_sidecars

PUBLIC, SECRET = "pk-lf-workers", "sk-lf-workers"
PROMPT = "support/answer"
BODY = (
    b'{"model": "langfuse/gpt-4o-mini", "prompt_id": "support/answer",'
    b' "messages": [{"role": "user", "content": "Hi"}]}'
)
BATCH = 8
DEADLINE = 30.0  # a hang detector: each batch is a real round trip


@pytest.fixture
async def langfuse() -> AsyncIterator[tuple[FakeLangfuse, str]]:
    fake = FakeLangfuse(public_key=PUBLIC, secret_key=SECRET)
    fake.add_prompt(PROMPT, "Version one.", labels=["production"])
    async with serve_in_background(fake.app) as url:
        yield fake, url


def fresh_connections() -> httpx2.AsyncClient:
    """A client that opens a new connection per request, so that either worker may answer."""
    return httpx2.AsyncClient(limits=httpx2.Limits(max_keepalive_connections=0), timeout=10)


async def batch(http: httpx2.AsyncClient, sidecar: Sidecar) -> list[str]:
    """The versions served to ``BATCH`` concurrent requests."""
    url = f"{sidecar.url}/v1/chat/completions"
    answers = await asyncio.gather(*(http.post(url, content=BODY) for _ in range(BATCH)))
    assert {answer.status_code for answer in answers} == {200}
    return [answer.headers["x-prompt-version"] for answer in answers]


def requests_total(metrics: str) -> float:
    found = re.search(
        r'^prompt_middleware_requests_total\{route="/v1/chat/completions",status="200"\} (\S+)$',
        metrics,
        re.MULTILINE,
    )
    assert found is not None, metrics
    return float(found.group(1))


async def test_an_invalidation_reaches_every_worker_and_metrics_are_summed(
    langfuse: tuple[FakeLangfuse, str],
) -> None:
    fake, url = langfuse
    env = {"LANGFUSE_PUBLIC_KEY": PUBLIC, "LANGFUSE_SECRET_KEY": SECRET, "LANGFUSE_BASE_URL": url}
    async with running_sidecars(1, env, workers=2) as [sidecar], fresh_connections() as http:
        sent = 0
        async with asyncio.timeout(DEADLINE):
            while fake.fetch_count < 2:  # until both workers hold version 1
                assert set(await batch(http, sidecar)) == {"1"}
                sent += BATCH
        # The label moves without a webhook: only the invalidation can tell the workers.
        version = fake.add_prompt(PROMPT, "Version two.")
        fake.move_label(PROMPT, "production", version)
        invalidated = await http.post(
            f"{sidecar.url}/cache/invalidate", json={"store": "langfuse", "prompt_id": PROMPT}
        )
        assert invalidated.status_code == 200, invalidated.text
        async with asyncio.timeout(DEADLINE):
            while fake.fetch_count < 4:  # until both workers asked again
                assert set(await batch(http, sidecar)) == {str(version)}
                sent += BATCH
        assert fake.fetch_count == 4
        # Every scrape, whichever worker answers it, shows both workers' requests.
        scrapes = await asyncio.gather(*(http.get(f"{sidecar.url}/metrics") for _ in range(6)))
        assert {requests_total(scrape.text) for scrape in scrapes} == {float(sent)}
        assert "prompt_middleware_redis_up" not in scrapes[0].text  # no Redis configured
