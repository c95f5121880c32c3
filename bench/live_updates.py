"""Live updates: how long after a webhook every replica serves the promoted prompt version.

Three sidecar processes (``prompt-middleware serve --echo``, one worker each, each behind
nothing but its own port) share a real Redis (Debian's ``redis-server`` on a free port) and the
Langfuse fake of the test suite (served by uvicorn in this process). Under a steady load spread
across the three, each round creates a new version of the prompt, moves the ``production``
label to it and sends Langfuse's webhook deliveries for the move (signed as Langfuse signs
them) to one replica, in turn. Then every replica is polled until it answers with the new
version (``x-prompt-version``): the time from sending the webhook to the last replica's first
new answer is the round's "time to everywhere".

    .venv/bin/python bench/live_updates.py           # 20 promotions under ~500 req/s
    .venv/bin/python bench/live_updates.py --smoke   # 3 promotions under ~50 req/s, for CI

Target: p99 ≤ 1 s (the README, "Many replicas"). Everything listens on 127.0.0.1 and stops
with the script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from _common import PATH, cpu_model, mark, table

PUBLIC: Final = "pk-lf-bench"
SECRET: Final = "sk-lf-bench"
WEBHOOK_SECRET: Final = "lf-whsec_" + "be" * 32
PROMPT: Final = "bench/live"
REPLICAS: Final = 3
TARGET_SECONDS: Final = 1.0
BODY: Final = json.dumps(
    {
        "model": "langfuse/gpt-4o-mini",
        "prompt_id": PROMPT,
        "prompt_variables": {"product": "Acme"},
        "messages": [{"role": "user", "content": "Hello"}],
    }
).encode()


@dataclass
class Load:
    """The steady background load: counts of answers by status."""

    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    started: float = 0.0
    stopped: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / max(self.stopped - self.started, 1e-9)


async def post(session: Any, url: str) -> tuple[int, str | None]:
    async with session.post(
        url + PATH, data=BODY, headers={"content-type": "application/json"}
    ) as r:
        await r.read()
        return r.status, r.headers.get("x-prompt-version")


async def generate_load(
    session: Any, urls: list[str], rate: float, load: Load, stop: asyncio.Event
) -> None:
    """``rate`` requests per second spread over the replicas, from 16 paced lanes."""
    lanes = 16
    interval = lanes / rate

    async def lane(offset: int) -> None:
        due = time.monotonic() + interval * offset / lanes
        turn = offset
        while not stop.is_set():
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due += interval
            turn += 1
            load.sent += 1
            try:
                status, _ = await post(session, urls[turn % len(urls)])
            except Exception:
                load.failures += 1
                continue
            load.statuses[status] = load.statuses.get(status, 0) + 1

    load.started = time.monotonic()
    await asyncio.gather(*(lane(n) for n in range(lanes)))
    load.stopped = time.monotonic()


async def first_new_answer(session: Any, url: str, version: int, sent: float) -> float:
    """Seconds from ``sent`` until ``url`` first answers with ``version``."""
    async with asyncio.timeout(30):
        while True:
            status, served = await post(session, url)
            if status == 200 and served == str(version):
                return time.monotonic() - sent


async def promote(langfuse: Any, session: Any, urls: list[str], round_: int) -> float:
    """One promotion: a new version, the label moved, the webhooks sent to one replica."""
    version = langfuse.add_prompt(PROMPT, f"You help {{{{product}}}}; version {round_ + 2}.")
    deliveries = langfuse.move_label(PROMPT, "production", version)
    target = urls[round_ % len(urls)]
    sent = time.monotonic()
    for body in deliveries:
        headers = langfuse.webhook_headers(WEBHOOK_SECRET, body)
        async with session.post(target + "/webhooks/langfuse", data=body, headers=headers) as r:
            if r.status != 200:
                raise RuntimeError(f"the webhook was answered {r.status}: {await r.text()}")
    times = await asyncio.gather(*(first_new_answer(session, url, version, sent) for url in urls))
    return max(times)


async def run(promotions: int, rate: float) -> tuple[list[float], Load]:
    # The fakes live with the tests; the script's own folder is on the path when it runs.
    from tests.fakes.langfuse_webhooks import WebhookLangfuse as FakeLangfuse
    from tests.fakes.redis_server import running_redis
    from tests.fakes.server import serve_in_background
    from tests.fakes.sidecars import running_sidecars

    langfuse = FakeLangfuse(public_key=PUBLIC, secret_key=SECRET)
    langfuse.add_prompt(PROMPT, "You help {{product}}; version 1.", labels=["production"])
    with running_redis() as redis:
        async with serve_in_background(langfuse.app) as langfuse_url:
            env = {
                "LANGFUSE_PUBLIC_KEY": PUBLIC,
                "LANGFUSE_SECRET_KEY": SECRET,
                "LANGFUSE_BASE_URL": langfuse_url,
                "PROMPT_MIDDLEWARE_REDIS_URL": redis.url,
                "PROMPT_MIDDLEWARE_LANGFUSE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                # Left at info: start-up is awaited on uvicorn's info lines.
            }
            async with running_sidecars(REPLICAS, env) as sidecars:
                return await measure(langfuse, [s.url for s in sidecars], promotions, rate)


async def measure(
    langfuse: Any, urls: list[str], promotions: int, rate: float
) -> tuple[list[float], Load]:
    import aiohttp

    load, stop = Load(), asyncio.Event()
    times: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        for url in urls:  # every replica warm before the first round
            await first_new_answer(session, url, 1, time.monotonic())
        loader = asyncio.create_task(generate_load(session, urls, rate, load, stop))
        try:
            for round_ in range(promotions):
                await asyncio.sleep(random.uniform(0.3, 0.8))  # steady load in between
                times.append(await promote(langfuse, session, urls, round_))
                print(f"  promotion {round_ + 1}: {times[-1] * 1000:.0f} ms", flush=True)
        finally:
            stop.set()
            await loader
    return times, load


def percentile(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def report(times: list[float], load: Load) -> str:
    p50, p99 = percentile(times, 50), percentile(times, 99)
    answers = ", ".join(f"{n} x {status}" for status, n in sorted(load.statuses.items()))
    rows = [
        ["promotions", str(len(times)), "", ""],
        ["time to everywhere, p50", f"{p50 * 1000:.0f} ms", "", ""],
        [
            "time to everywhere, p99",
            f"{p99 * 1000:.0f} ms",
            f"≤ {TARGET_SECONDS * 1000:.0f} ms",
            mark(p99 <= TARGET_SECONDS),
        ],
        ["time to everywhere, max", f"{max(times) * 1000:.0f} ms", "", ""],
        ["background load", f"{load.rate:.0f} req/s", "", ""],
        [
            "background answers",
            answers or "none",
            "all 200",
            mark(set(load.statuses) <= {200} and not load.failures),
        ],
        ["background failures (no answer)", str(load.failures), "0", mark(load.failures == 0)],
    ]
    return table(["measure", "value", "target", "met"], rows, "lrrl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="3 promotions under ~50 req/s")
    parser.add_argument("--promotions", type=int, default=20)
    parser.add_argument("--rate", type=float, default=500.0, help="background requests per second")
    args = parser.parse_args(argv)
    promotions, rate = (3, 50.0) if args.smoke else (args.promotions, args.rate)
    print(
        f"{REPLICAS} sidecars (one worker each), Redis, the Langfuse fake; {promotions} "
        f"promotions under ~{rate:g} req/s spread across the replicas; {cpu_model()}",
        flush=True,
    )
    times, load = asyncio.run(run(promotions, rate))
    print()
    print(report(times, load))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
