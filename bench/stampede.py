"""Cold start and stampede: 1,000 concurrent requests for a prompt never fetched before.

The Langfuse fake of the test suite (``tests/fakes/langfuse.py``) answers every prompt request
after 50 ms; it is served by uvicorn on 127.0.0.1, in this process's event loop. In front of a
no-op app, ``PromptMiddleware`` (the Langfuse store, default settings) is called in process as
raw ASGI calls, no HTTP client in between, so the latencies are the middleware's, the cache's
and the store's. Each round a new middleware, its cache cold, gets the 1,000 managed requests
at once; the store must be asked once (the cache's single-flight). Then the same 1,000 again on
the now warm cache: the round's baseline. Medians over ``--rounds`` rounds.

    .venv/bin/python bench/stampede.py            # 5 rounds
    .venv/bin/python bench/stampede.py --smoke    # 1 round, for CI

Nothing but the fake listens, on 127.0.0.1; it stops with the script.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from _common import PATH, configure_logging, cpu_model, mark, median, table
from hot_path import PROMPT, body_of, noop_app
from starlette.types import ASGIApp, Message

from prompt_middleware import ChatMessage, PromptMiddleware, Secret, Settings

PUBLIC: Final = "pk-lf-bench"
SECRET: Final = "sk-lf-bench"
BODY: Final = body_of(2_000, managed=True, store="langfuse")


@dataclass(frozen=True)
class Answer:
    latency_ms: float
    status: int
    cache: str | None  # x-prompt-cache


async def call(app: ASGIApp, body: bytes, sent: float) -> Answer:
    """One request as uvicorn would hand it to the app; its latency counts from ``sent``."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {"type": "http", "method": "POST", "path": PATH, "headers": headers}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    start: dict[str, Any] = {}

    async def receive() -> Message:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)

    await app(scope, receive, send)
    elapsed = (time.perf_counter() - sent) * 1000
    cache = dict(start.get("headers", ())).get(b"x-prompt-cache")
    return Answer(elapsed, start.get("status", 0), cache.decode() if cache else None)


@dataclass(frozen=True)
class Round:
    fetches: int
    cold: list[Answer]
    warm: list[Answer]
    cpu_ms: float  # this process's CPU time for the cold wave, per request


async def wave(app: ASGIApp, requests: int) -> tuple[list[Answer], float]:
    """``requests`` requests at once, as clients that all send at the same moment see them:
    latencies count from that moment, so the last one served waits for all the others."""
    sent, cpu = time.perf_counter(), time.process_time()
    answers = await asyncio.gather(*(call(app, BODY, sent) for _ in range(requests)))
    return answers, (time.process_time() - cpu) * 1000 / requests


def percentile(answers: list[Answer], p: int) -> float:
    return statistics.quantiles([a.latency_ms for a in answers], n=100)[p - 1]


async def run(rounds: int, requests: int, latency: float) -> list[Round]:
    # The fakes live with the tests; the script's own folder, not the repository's, is on the
    # path when it runs, hence the late import (see the __main__ block).
    from tests.fakes.langfuse import FakeLangfuse
    from tests.fakes.server import serve_in_background

    assert not isinstance(PROMPT.prompt, str)
    langfuse = FakeLangfuse(public_key=PUBLIC, secret_key=SECRET)
    langfuse.add_prompt(
        PROMPT.name,
        [
            {"role": m.role, "content": m.content}
            if isinstance(m, ChatMessage)
            else {"type": "placeholder", "name": m.name}
            for m in PROMPT.prompt
        ],
        config=PROMPT.config,
        labels=["production"],
    )
    langfuse.latency = latency
    results = []
    async with serve_in_background(langfuse.app) as url:
        settings = Settings(
            langfuse_public_key=PUBLIC, langfuse_secret_key=Secret(SECRET), langfuse_base_url=url
        )
        for _ in range(rounds):
            middleware = PromptMiddleware(noop_app, settings)  # a cold cache every round
            before = langfuse.fetch_count
            try:
                cold, cpu_ms = await wave(middleware, requests)
                fetches = langfuse.fetch_count - before
                warm, _ = await wave(middleware, requests)
            finally:
                await middleware.engine.aclose()
            results.append(Round(fetches, cold, warm, cpu_ms))
            print(
                f"  round {len(results)}: {fetches} store fetch(es); cold p50 "
                f"{percentile(cold, 50):.1f} ms p99 {percentile(cold, 99):.1f} ms; warm p50 "
                f"{percentile(warm, 50):.1f} ms p99 {percentile(warm, 99):.1f} ms",
                flush=True,
            )
    return results


def report(results: list[Round], requests: int, latency: float) -> str:
    rows = []
    for number, result in enumerate(results, 1):
        answers = Counter(f"{a.status} {a.cache}" for a in result.cold + result.warm)
        rows.append(
            [
                str(number),
                str(result.fetches),
                f"{percentile(result.cold, 50):.1f} ms",
                f"{percentile(result.cold, 99):.1f} ms",
                f"{max(a.latency_ms for a in result.cold):.1f} ms",
                f"{percentile(result.warm, 50):.1f} ms",
                f"{percentile(result.warm, 99):.1f} ms",
                f"{result.cpu_ms * 1000:.0f} µs",
                ", ".join(f"{n} x {answer}" for answer, n in sorted(answers.items())),
            ]
        )
    header = ["round", "store fetches", "cold p50", "cold p99", "cold max", "warm p50"]
    header += ["warm p99", "CPU / cold request", "answers (status, x-prompt-cache)"]
    rounds = table(header, rows, "lrrrrrrrl")

    fetches = [r.fetches for r in results]
    cold_p99 = median(percentile(r.cold, 99) for r in results)
    warm_p99 = median(percentile(r.warm, 99) for r in results)
    summary = [
        [
            "store fetches (per round)",
            ", ".join(map(str, fetches)),
            "1",
            mark(all(f == 1 for f in fetches)),
        ],
        ["p99, cold cache", f"{cold_p99:.1f} ms", "—", ""],
        ["p99 of the same wave, warm cache (baseline)", f"{warm_p99:.1f} ms", "—", ""],
        ["what the cold start adds to the p99", f"{cold_p99 - warm_p99:.1f} ms", "—", ""],
        ["the store's latency, for comparison", f"{latency * 1000:.1f} ms", "—", ""],
    ]
    measures = table(["measure (median of rounds)", "value", "target", "met"], summary, "lrrl")
    return f"{rounds}\n\n{measures}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="one round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--latency", type=float, default=0.05, help="the fake's, in seconds")
    args = parser.parse_args(argv)
    rounds = 1 if args.smoke else args.rounds
    configure_logging("warning")
    print(
        f"{args.requests} concurrent requests per round, {rounds} round(s); Langfuse fake "
        f"latency {args.latency * 1000:g} ms; the middleware called in process (raw ASGI) and "
        f"the fake on uvicorn, in one event loop on one core; {cpu_model()}",
        flush=True,
    )
    try:
        import uvloop
    except ImportError:
        results = asyncio.run(run(rounds, args.requests, args.latency))
    else:
        results = uvloop.run(run(rounds, args.requests, args.latency))
    print()
    print(report(results, args.requests, args.latency))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
