"""Many replicas, for real: sidecar processes (``prompt-middleware serve``), a real Redis,
the Langfuse fake sending webhooks signed as Langfuse signs them. No fake Redis here.

Every wait is bounded and ends on an observed event: a line of a replica's log (each one
wakes the test, which then asks the replica once), a Redis key's keyspace event. A wait for
one of the README's bounds allows that bound plus the margin of ``tests/live/conftest.py``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx2
import pytest

from tests.fakes.langfuse_webhooks import WebhookLangfuse as FakeLangfuse
from tests.fakes.redis_server import RedisServer, SilentRedis
from tests.fakes.server import serve_in_background
from tests.fakes.sidecars import Sidecar, running_sidecars, start_sidecar
from tests.live._watched import key_written
from tests.live.conftest import FAN_OUT_SECONDS, MARGIN_SECONDS, REDIS_WAIT_SECONDS

PUBLIC, SECRET = "pk-lf-replicas", "sk-lf-replicas"
WEBHOOK_SECRET = "lf-whsec_" + "42" * 32
PROMPT = "support/answer"
BODY = (
    b'{"model": "langfuse/gpt-4o-mini", "prompt_id": "support/answer",'
    b' "messages": [{"role": "user", "content": "Hi"}]}'
)
SUBSCRIBED = b"redis_subscribed"
INVALIDATED = b"prompt_cache_invalidated"
REDIS_STATE = b"redis_"  # redis_up, redis_down (and redis_subscribed)
#: A hang detector for what the README bounds only by "automatic" (reconnection).
DEADLINE = 15.0
PINNED = BODY.replace(b'"prompt_id"', b'"prompt_version": 1, "prompt_id"')


@dataclass
class Fleet:
    langfuse: FakeLangfuse
    langfuse_url: str
    redis_url: str | None

    def env(self, redis_url: str | None = None) -> dict[str, str]:
        env = {
            "LANGFUSE_PUBLIC_KEY": PUBLIC,
            "LANGFUSE_SECRET_KEY": SECRET,
            "LANGFUSE_BASE_URL": self.langfuse_url,
            "PROMPT_MIDDLEWARE_LANGFUSE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PROMPT_MIDDLEWARE_STORE_TIMEOUT_SECONDS": "2",
        }
        url = redis_url or self.redis_url
        if url is not None:
            env["PROMPT_MIDDLEWARE_REDIS_URL"] = url
        return env


@pytest.fixture
async def fleet(redis_server: RedisServer) -> AsyncIterator[Fleet]:
    langfuse = FakeLangfuse(public_key=PUBLIC, secret_key=SECRET)
    langfuse.add_prompt(PROMPT, "Version one.", labels=["production"])
    async with serve_in_background(langfuse.app) as url:
        yield Fleet(langfuse, url, redis_server.url)


async def ask(http: httpx2.AsyncClient, sidecar: Sidecar, body: bytes = BODY) -> httpx2.Response:
    return await http.post(f"{sidecar.url}/v1/chat/completions", content=body)


async def version_of(http: httpx2.AsyncClient, sidecar: Sidecar) -> str:
    response = await ask(http, sidecar)
    assert response.status_code == 200, response.text
    return response.headers["x-prompt-version"]


async def until(
    sidecar: Sidecar, done: Callable[[], Awaitable[bool]], needle: bytes, seconds: float
) -> None:
    """Return once ``done()``; between two tries, wait for ``sidecar`` to log ``needle``."""
    async with asyncio.timeout(seconds):
        while True:
            logged = sidecar.count(needle)
            if await done():
                return
            await sidecar.wait_for_log(needle, count=logged + 1, seconds=seconds)


async def until_serves(
    http: httpx2.AsyncClient,
    sidecar: Sidecar,
    version: str,
    seconds: float = FAN_OUT_SECONDS + MARGIN_SECONDS,
) -> None:
    """Return once ``sidecar`` serves ``version``: asked again after each invalidation it logs."""

    async def serves() -> bool:
        return await version_of(http, sidecar) == version

    await until(sidecar, serves, INVALIDATED, seconds)


async def promote(fleet: Fleet, http: httpx2.AsyncClient, to: Sidecar) -> str:
    """A new version, the production label moved to it, Langfuse's deliveries sent to ``to``."""
    version = fleet.langfuse.add_prompt(PROMPT, "A newer version.")
    for body in fleet.langfuse.move_label(PROMPT, "production", version):
        headers = fleet.langfuse.webhook_headers(WEBHOOK_SECRET, body)
        response = await http.post(f"{to.url}/webhooks/langfuse", content=body, headers=headers)
        assert response.status_code == 200, response.text
    return str(version)


def gauge(metrics: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
    return None if found is None else float(found.group(1))


async def until_redis_up(http: httpx2.AsyncClient, sidecar: Sidecar, up: bool) -> None:
    """Return once the gauge says ``up``: scraped again after each Redis state it logs."""

    async def shows() -> bool:
        metrics = (await http.get(f"{sidecar.url}/metrics")).text
        return gauge(metrics, "prompt_middleware_redis_up") == (1.0 if up else 0.0)

    await until(sidecar, shows, REDIS_STATE, DEADLINE)


async def test_a_webhook_to_one_replica_reaches_every_replica(fleet: Fleet) -> None:
    async with running_sidecars(3, fleet.env()) as sidecars, httpx2.AsyncClient() as http:
        for sidecar in sidecars:
            assert await version_of(http, sidecar) == "1"
            await until_redis_up(http, sidecar, True)
        fetches = fleet.langfuse.fetch_count
        version = await promote(fleet, http, sidecars[1])
        for sidecar in sidecars:
            await until_serves(http, sidecar, version)
        # Each replica asked Langfuse again, once (its cache's single flight).
        assert fleet.langfuse.fetch_count - fetches == 3
        # A duplicate delivery is accepted again and changes nothing it should not.
        [body] = fleet.langfuse.move_label(PROMPT, "production", int(version))[:1]
        headers = fleet.langfuse.webhook_headers(WEBHOOK_SECRET, body)
        for _ in range(2):
            answer = await http.post(
                f"{sidecars[0].url}/webhooks/langfuse", content=body, headers=headers
            )
            assert answer.status_code == 200
        for sidecar in sidecars:
            assert await version_of(http, sidecar) == version


async def test_a_deleted_version_is_not_served_after_the_webhook(fleet: Fleet) -> None:
    async with running_sidecars(2, fleet.env()) as sidecars, httpx2.AsyncClient() as http:
        for sidecar in sidecars:
            assert (await ask(http, sidecar, PINNED)).status_code == 200
            await until_redis_up(http, sidecar, True)
        fleet.langfuse.add_prompt(PROMPT, "Version two.", labels=["production"])
        body = fleet.langfuse.delete_version(PROMPT, 1)
        headers = fleet.langfuse.webhook_headers(WEBHOOK_SECRET, body)
        answer = await http.post(
            f"{sidecars[0].url}/webhooks/langfuse", content=body, headers=headers
        )
        assert answer.status_code == 200
        for sidecar in sidecars:

            async def gone(sidecar: Sidecar = sidecar) -> bool:
                return (await ask(http, sidecar, PINNED)).status_code == 404

            await until(sidecar, gone, INVALIDATED, FAN_OUT_SECONDS + MARGIN_SECONDS)
        response = await ask(http, sidecars[1], PINNED)
        assert response.json()["error"]["code"] == "prompt_not_found"


async def test_a_badly_signed_webhook_changes_nothing(fleet: Fleet) -> None:
    async with running_sidecars(1, fleet.env()) as [sidecar], httpx2.AsyncClient() as http:
        assert await version_of(http, sidecar) == "1"
        version = fleet.langfuse.add_prompt(PROMPT, "A newer version.")
        [body, *_] = fleet.langfuse.move_label(PROMPT, "production", version)
        headers = fleet.langfuse.webhook_headers("lf-whsec_wrong", body)
        answer = await http.post(f"{sidecar.url}/webhooks/langfuse", content=body, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_signature"
        assert await version_of(http, sidecar) == "1"  # the TTL (60 s) still holds


async def test_a_replica_started_while_the_store_is_down_serves_the_redis_copy(
    fleet: Fleet,
) -> None:
    assert fleet.redis_url is not None
    async with httpx2.AsyncClient() as http:
        async with (
            key_written(fleet.redis_url, "prompt-middleware:lkg:*") as copied,
            running_sidecars(1, fleet.env()) as [first],
        ):
            assert await version_of(http, first) == "1"
            # "Kept in Redis within one second of the fetch"
            async with asyncio.timeout(FAN_OUT_SECONDS + MARGIN_SECONDS):
                await copied()
        fleet.langfuse.fail_with = 503
        late = await start_sidecar(fleet.env())
        try:
            response = await ask(http, late)
            assert response.status_code == 200, response.text
            assert response.headers["x-prompt-cache"] == "stale"
            assert response.headers["x-prompt-version"] == "1"
            assert b"Version one." in response.content
        finally:
            await late.stop()
        # Without Redis, the same replica has nothing to serve.
        alone = await start_sidecar({**fleet.env(), "PROMPT_MIDDLEWARE_REDIS_URL": ""})
        try:
            response = await ask(http, alone)
            assert response.status_code == 502
        finally:
            await alone.stop()


async def test_redis_killed_and_restarted_under_traffic(
    fleet: Fleet, redis_server: RedisServer
) -> None:
    async with running_sidecars(2, fleet.env()) as sidecars, httpx2.AsyncClient() as http:
        for sidecar in sidecars:
            await until_redis_up(http, sidecar, True)
            await sidecar.wait_for_log(SUBSCRIBED)
        statuses: list[int] = []
        stop = asyncio.Event()

        async def traffic() -> None:
            while not stop.is_set():
                for sidecar in sidecars:
                    statuses.append((await ask(http, sidecar)).status_code)

        running = asyncio.create_task(traffic())
        try:
            redis_server.kill()
            for sidecar in sidecars:
                await until_redis_up(http, sidecar, False)
            version = await promote(fleet, http, sidecars[0])  # Redis down: applied here only
            await until_serves(http, sidecars[0], version)
            redis_server.start()
            for sidecar in sidecars:
                await until_redis_up(http, sidecar, True)
                await sidecar.wait_for_log(SUBSCRIBED, count=2)  # listening again
        finally:
            stop.set()
            await running
        assert statuses
        assert set(statuses) == {200}
        # What was promoted while Redis was down reached the other replica (it was queued,
        # or the replica, back on the channel, assumed it missed something).
        await until_serves(http, sidecars[1], version)
        # Fan-out resumed: the next promotion reaches the other replica through Redis.
        newer = await promote(fleet, http, sidecars[0])
        await until_serves(http, sidecars[1], newer)


async def test_a_redis_that_never_answers_changes_no_answer(
    fleet: Fleet, silent_redis: SilentRedis
) -> None:
    env = fleet.env(silent_redis.url)
    async with running_sidecars(1, env) as [sidecar], httpx2.AsyncClient() as http:
        assert await version_of(http, sidecar) == "1"
        await until_redis_up(http, sidecar, False)
        assert silent_redis.connections >= 1  # it was tried, and never answered
        # The webhook applies the change here and answers; Redis only queues it.
        version = await promote(fleet, http, sidecar)
        assert await version_of(http, sidecar) == version
        fleet.langfuse.fail_with = 503
        assert await version_of(http, sidecar) == version  # cached: Redis plays no part
        # Never fetched and the store failing: no copy can be read, a 502 (not a hang).
        response = await ask(http, sidecar, PINNED)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "prompt_store_unavailable"


async def test_a_redis_that_stops_answering_changes_no_answer(
    fleet: Fleet, redis_server: RedisServer
) -> None:
    async with running_sidecars(1, fleet.env()) as [sidecar], httpx2.AsyncClient() as http:
        assert await version_of(http, sidecar) == "1"
        await until_redis_up(http, sidecar, True)
        redis_server.pause()  # connections still accepted by the kernel, never answered
        try:
            async with asyncio.timeout(REDIS_WAIT_SECONDS + MARGIN_SECONDS):
                version = await promote(fleet, http, sidecar)  # waits on Redis for 1 s at most
            assert await version_of(http, sidecar) == version
            fleet.langfuse.fail_with = 503
            # Whether or not the replica has noticed yet, a read of the copy is abandoned.
            response = await ask(http, sidecar, PINNED)
            assert response.status_code == 502
            assert await version_of(http, sidecar) == version
            await until_redis_up(http, sidecar, False)
        finally:
            redis_server.resume()
