"""Soak and load: the sidecar under many connections, a long mixed run and a failing store.

    .venv/bin/python bench/soak.py            # 100,000 requests, then 500 connections at once
    .venv/bin/python bench/soak.py --smoke    # about 2,000 requests and 100 connections

Three processes, all on 127.0.0.1: a fast fake upstream (this file, ``--upstream``), the
sidecar as users run it (``python -m prompt_middleware serve``, one worker) whose prompt store
is ``bench/flaky_store.py`` failing 10 % of its fetches behind a 0.05 s cache TTL (so that
background refreshes run, and fail, all the time), and this process as the load generator
(aiohttp, many concurrent tasks).

1. **Mixed run**: managed (text, chat, a pinned version), unmanaged and streamed requests.
   Once every prompt has been fetched, the cache must hide every store failure: zero failed
   requests. After a warm-up, the sidecar's RSS (``VmRSS``) must grow by less than 20 MB and
   its open sockets (``/proc/<pid>/fd`` links to ``socket:``) must not grow.
2. **Concurrent connections**: 500 requests at once, each on its own connection. The fake
   upstream holds every answer until all 500 are waiting, so all 500 really are in flight
   through the sidecar together; every one must succeed.

The figures are printed as a table; the exit status is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import aiohttp

ROOT: Final = Path(__file__).resolve().parent.parent
URL_PATH: Final = "/v1/chat/completions"
RSS_LIMIT: Final = 20 * 1024 * 1024
ANSWER: Final = (
    b'{"id":"chatcmpl-soak","object":"chat.completion","created":1700000000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"Hello from the soak upstream."},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":20,"completion_tokens":6,"total_tokens":26}}'
)
DONE: Final = b"data: [DONE]\n\n"
T = TypeVar("T")


# --- the fake upstream (a process of its own) -----------------------------------------------


def _sse_body() -> bytes:
    events = []
    for index, piece in enumerate(["Hello", " from", " the", " soak", " upstream."]):
        delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
        event = {
            "id": "chatcmpl-soak",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        events.append(b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n")
    events.append(DONE)
    # One chunk per event, as a real upstream streams them.
    return b"".join(b"%x\r\n%s\r\n" % (len(event), event) for event in events) + b"0\r\n\r\n"


_SSE_BODY: Final = _sse_body()
_STREAM: Final = re.compile(rb'"stream"\s*:\s*true')
_LENGTH: Final = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
_BARRIER: Final = re.compile(rb"\r\nx-soak-barrier: *(\d+)", re.IGNORECASE)


def _response(stream: bool, concurrent: int = 0) -> bytes:
    extra = b"x-soak-concurrent: %d\r\n" % concurrent if concurrent else b""
    if stream:
        return (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n" + extra + b"\r\n" + _SSE_BODY
        )
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n" % len(ANSWER) + extra + b"\r\n" + ANSWER
    )


_RESPONSES: Final = {True: _response(True), False: _response(False)}
_LEFTOVER: Final = (
    b'{"error":{"message":"the request still names a managed prompt","type":"soak",'
    b'"param":null,"code":"not_rewritten"}}'
)
_NOT_REWRITTEN: Final = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n" % len(_LEFTOVER) + _LEFTOVER
)


class _Barrier:
    """Answers held until ``size`` requests wait together; each answer says how many did."""

    def __init__(self) -> None:
        self.waiting: list[tuple[asyncio.Transport, bool]] = []

    def hold(self, transport: asyncio.Transport, stream: bool, size: int) -> None:
        self.waiting.append((transport, stream))
        if len(self.waiting) >= size:
            waiting, self.waiting = self.waiting, []
            for held, held_stream in waiting:
                if not held.is_closing():
                    held.write(_response(held_stream, len(waiting)))


class _UpstreamProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length request bodies: what the forwarder sends."""

    def __init__(self, barrier: _Barrier) -> None:
        self._barrier = barrier
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(buffer[: end + 2])
            match = _LENGTH.search(head)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(buffer) < total:
                return
            body = bytes(buffer[end + 4 : total])
            del buffer[:total]
            self._answer(head, body)

    def _answer(self, head: bytes, body: bytes) -> None:
        assert self._transport is not None
        if b'"prompt_id"' in body:  # the sidecar forwarded a managed request unrewritten
            self._transport.write(_NOT_REWRITTEN)
            return
        stream = _STREAM.search(body) is not None
        barrier = _BARRIER.search(head)
        if barrier is not None:
            self._barrier.hold(self._transport, stream, int(barrier.group(1)))
        else:
            self._transport.write(_RESPONSES[stream])


async def _serve_upstream(port: int) -> None:
    loop = asyncio.get_running_loop()
    barrier = _Barrier()
    server = await loop.create_server(
        lambda: _UpstreamProtocol(barrier), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await server.serve_forever()


# --- processes ------------------------------------------------------------------------------


def _run(main: Coroutine[Any, Any, T]) -> T:
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _raise_fd_limit() -> None:
    # 500 connections in, 500 out: more than the usual soft limit of 1024 descriptors.
    # Children (the sidecar, the upstream) inherit the raised limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _wait_until(check: Any, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"soak: {what} exited with status {process.returncode}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.05)  # polling a child's start-up
    raise SystemExit(f"soak: {what} did not start within 60 s")


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
        return bool(response.status == 200)


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@contextlib.contextmanager
def _processes(ttl: float, log: Path) -> Iterator[tuple[int, int]]:
    """Start the fake upstream and the sidecar; yield the sidecar's port and pid."""
    upstream_port, sidecar_port = _free_port(), _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROMPT_MIDDLEWARE_")}
    environ.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")])),
        PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
        PROMPT_MIDDLEWARE_STORES="flaky=bench.flaky_store:make",
        PROMPT_MIDDLEWARE_CACHE_TTL_SECONDS=str(ttl),
        PROMPT_MIDDLEWARE_LOG_LEVEL="warning",
        PROMPT_MIDDLEWARE_WORKERS="1",
    )
    started: list[subprocess.Popen[bytes]] = []
    with log.open("wb") as log_file:
        try:
            upstream = subprocess.Popen(
                [sys.executable, __file__, "--upstream", str(upstream_port)], cwd=ROOT
            )
            started.append(upstream)
            _wait_until(lambda: _listening(upstream_port), upstream, "the fake upstream")
            sidecar = subprocess.Popen(
                [sys.executable, "-m", "prompt_middleware", "serve", "--port", str(sidecar_port)],
                cwd=ROOT,
                env=environ,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            started.append(sidecar)
            _wait_until(lambda: _ready(sidecar_port), sidecar, "the sidecar")
            yield sidecar_port, sidecar.pid
        finally:
            for process in reversed(started):
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


# --- the traffic ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    body: bytes
    stream: bool
    prompt: str | None  # the x-prompt-name a managed request must answer with


def _body(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


_MESSAGES: Final = [{"role": "user", "content": "Where is my order 1234?"}]
KINDS: Final = (
    Kind(
        "managed text",
        _body(
            {
                "model": "flaky/gpt-4o-mini",
                "prompt_id": "soak/text",
                "prompt_variables": {"name": "Ada", "company": "Acme"},
                "messages": [],
            }
        ),
        False,
        "soak/text",
    ),
    Kind(
        "managed chat",
        _body(
            {
                "model": "flaky/gpt-4o-mini",
                "prompt_id": "soak/chat",
                "prompt_variables": {"language": "German"},
                "messages": _MESSAGES,
                "user": "soak",
            }
        ),
        False,
        "soak/chat",
    ),
    Kind(
        "managed pinned",
        _body(
            {
                "model": "flaky/gpt-4o-mini",
                "prompt_id": "soak/chat",
                "prompt_version": 1,
                "prompt_variables": {"language": "French"},
                "messages": _MESSAGES,
            }
        ),
        False,
        "soak/chat",
    ),
    Kind(
        "managed streamed",
        _body(
            {
                "model": "flaky/gpt-4o",
                "prompt_id": "soak/support",
                "prompt_label": "staging",
                "prompt_variables": {"product": "Acme Cloud"},
                "messages": _MESSAGES,
                "stream": True,
            }
        ),
        True,
        "soak/support",
    ),
    Kind("unmanaged", _body({"model": "gpt-4o-mini", "messages": _MESSAGES}), False, None),
    Kind(
        "unmanaged streamed",
        _body({"model": "gpt-4o-mini", "messages": _MESSAGES, "stream": True}),
        True,
        None,
    ),
)
# Out of every 20 requests: 6 text, 4 chat, 2 pinned, 3 managed streamed, 3 unmanaged,
# 2 unmanaged streamed (75 % managed, 25 % streamed).
MIX: Final = [KINDS[i] for i in (0, 1, 2, 3, 4, 0, 1, 5, 0, 3, 4, 0, 1, 2, 0, 3, 4, 1, 0, 5)]


@dataclass
class Tally:
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    cache: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def row(self, name: str, requests: int) -> list[str]:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000 if ordered else 0.0
        p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000 if ordered else 0.0
        rate = requests / self.seconds if self.seconds else 0.0
        return [
            name,
            f"{requests:,}",
            f"{self.failed:,}",
            f"{rate:,.0f}",
            f"{p50:.1f}",
            f"{p99:.1f}",
        ]


async def _one(
    session: aiohttp.ClientSession,
    url: str,
    kind: Kind,
    tally: Tally,
    headers: dict[str, str] | None = None,
) -> dict[str, str] | None:
    """Send one request, check its answer; the response headers, or None if it failed."""
    started = time.perf_counter()
    try:
        async with session.post(
            url, data=kind.body, headers={"content-type": "application/json", **(headers or {})}
        ) as response:
            body = await response.read()
            answer = {k.lower(): v for k, v in response.headers.items()}
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.failures[type(exc).__name__] += 1
        return None
    tally.latencies.append(time.perf_counter() - started)
    if status != 200:
        try:
            code = json.loads(body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "?"
        tally.failures[f"{status} {code}"] += 1
        return None
    complete = body.endswith(DONE) if kind.stream else body == ANSWER
    if not complete:
        tally.failures["incomplete body"] += 1
        return None
    if kind.prompt is not None:
        if answer.get("x-prompt-name") != kind.prompt:
            tally.failures["wrong or missing x-prompt-name"] += 1
            return None
        tally.cache[answer.get("x-prompt-cache", "?")] += 1
    tally.ok += 1
    return answer


def _session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
        timeout=aiohttp.ClientTimeout(total=120),
        auto_decompress=False,
    )


@dataclass
class Sample:
    done: int
    rss: int
    sockets: int


async def _prime(url: str) -> int:
    """Fetch each prompt once: a first fetch may meet a store failure, with nothing cached yet."""
    attempts = 0
    async with _session(1) as session:
        for kind in KINDS:
            if kind.prompt is None:
                continue
            for _ in range(20):
                attempts += 1
                if await _one(session, url, kind, Tally()) is not None:
                    break
            else:
                raise SystemExit(f"soak: could not fetch {kind.name} once in 20 attempts")
    return attempts


async def _mixed(
    session: aiohttp.ClientSession, url: str, pid: int, requests: int, concurrency: int
) -> tuple[Tally, list[Sample]]:
    """``requests`` of :data:`MIX` from ``concurrency`` tasks; the sidecar sampled 10 times."""
    tally = Tally()
    sampled: list[Sample] = []
    marks = {requests * (i + 1) // 10 for i in range(10)}
    next_index = 0
    done = 0

    async def worker() -> None:
        nonlocal next_index, done
        while next_index < requests:
            index = next_index
            next_index += 1
            await _one(session, url, MIX[index % len(MIX)], tally)
            done += 1
            if done in marks:
                sampled.append(Sample(done, _rss(pid), _sockets(pid)))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    tally.seconds = time.perf_counter() - started
    return tally, sampled


async def _concurrent(url: str, pid: int, connections: int, rounds: int) -> tuple[Tally, int]:
    """``rounds`` times, ``connections`` requests held by the upstream until all are in."""
    tally = Tally()
    peak = 0
    barrier = {"x-soak-barrier": str(connections)}
    async with _session(connections) as session:
        started = time.perf_counter()
        for _ in range(rounds):
            answers = await asyncio.gather(
                *(_one(session, url, MIX[i % len(MIX)], tally, barrier) for i in range(connections))
            )
            for answer in answers:
                if answer is not None and answer.get("x-soak-concurrent") != str(connections):
                    tally.failures["not all in flight together"] += 1
            # Every connection is still open, client side and upstream side.
            peak = max(peak, _sockets(pid))
        tally.seconds = time.perf_counter() - started
    return tally, peak


# --- the report -----------------------------------------------------------------------------


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "  ".join(cells)

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def _mb(value: float) -> str:
    return f"{value / 1024 / 1024:.1f} MB"


async def _drive(port: int, pid: int, args: argparse.Namespace) -> bool:
    url = f"http://127.0.0.1:{port}{URL_PATH}"
    primed = await _prime(url)
    async with _session(args.concurrency) as session:
        warm, _ = await _mixed(session, url, pid, args.warmup, args.concurrency)
        # The baseline: every connection of the run is open already, client and upstream side.
        after_warmup = Sample(0, _rss(pid), _sockets(pid))
        run, samples = await _mixed(session, url, pid, args.requests, args.concurrency)
    end = samples[-1]
    idle_sockets = _sockets(pid)  # the run's client connections are closed now
    burst, peak_sockets = await _concurrent(url, pid, args.connections, args.rounds)
    metrics = _metrics(port)

    def metric(name: str, **labels: str) -> int:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return int(metrics.get(f"{name}{{{inner}}}", 0))

    fetch = "prompt_middleware_store_fetch_seconds_count"
    managed_kinds = sum(kind.prompt is not None for kind in KINDS)
    store_ok = metric(fetch, outcome="ok", store="flaky")
    store_failed = metric(fetch, outcome="error", store="flaky")
    growth = max(s.rss for s in samples) - after_warmup.rss
    socket_growth = max(s.sockets for s in samples) - after_warmup.sockets
    checks = [
        ("mixed run: zero failed requests", run.failed == 0),
        ("warm-up: zero failed requests", warm.failed == 0),
        (f"{args.connections} concurrent connections: zero failed requests", burst.failed == 0),
        ("RSS growth after warm-up under 20 MB", growth < RSS_LIMIT),
        ("no growth in open sockets after warm-up", socket_growth <= 0),
        ("the store failed during the run", store_failed > 0),
    ]

    print()
    print(
        f"soak: sidecar pid {pid} (1 worker), store failing {args.failure_rate:.0%} of fetches, "
        f"cache TTL {args.ttl:g} s, {args.concurrency} client connections in the mixed run"
    )
    print()
    header = ["phase", "requests", "failed", "req/s", "p50 ms", "p99 ms"]
    rows = [
        warm.row("warm-up (mixed)", args.warmup),
        run.row("mixed run", args.requests),
        burst.row(
            f"{args.connections} connections at once x {args.rounds}", burst.ok + burst.failed
        ),
    ]
    print(_table(rows, header))
    print()
    figures = [
        ["RSS after warm-up", _mb(after_warmup.rss)],
        ["RSS at the end of the run", _mb(end.rss)],
        ["RSS growth, highest sample vs after warm-up", f"{growth / 1048576:+.1f} MB"],
        ["RSS samples during the run (MB)", " ".join(f"{s.rss / 1048576:.1f}" for s in samples)],
        ["sidecar sockets after warm-up", str(after_warmup.sockets)],
        ["sidecar sockets during the run", " ".join(str(s.sockets) for s in samples)],
        ["sidecar sockets once the run's clients closed", str(idle_sockets)],
        [f"sidecar sockets with {args.connections} connections open", str(peak_sockets)],
        ["store fetches ok / failed (sidecar /metrics)", f"{store_ok:,} / {store_failed:,}"],
        ["first fetches retried after a store failure", str(primed - managed_kinds)],
        ["managed answers hit / stale / miss", _cache(run)],
    ]
    print(_table(figures, ["figure", "value"]))
    for name, tally in (("warm-up", warm), ("mixed run", run), ("connections", burst)):
        for failure, count in tally.failures.most_common():
            print(f"  {name}: {count} x {failure}")
    print()
    for name, ok in checks:
        print(f"  {'ok  ' if ok else 'FAIL'}  {name}")
    return all(ok for _, ok in checks)


def _cache(tally: Tally) -> str:
    return " / ".join(f"{tally.cache.get(k, 0):,}" for k in ("hit", "stale", "miss"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="about 2,000 requests, 100 at once")
    parser.add_argument("--requests", type=int, help="requests in the mixed run (100,000)")
    parser.add_argument("--warmup", type=int, help="requests before the baseline (10,000)")
    parser.add_argument("--concurrency", type=int, default=64, help="connections, mixed run")
    parser.add_argument("--connections", type=int, help="connections at once (500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of connections at once")
    parser.add_argument("--ttl", type=float, default=0.05, help="cache TTL in seconds")
    parser.add_argument("--failure-rate", type=float, default=0.1, help="store failures")
    parser.add_argument("--upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream is not None:
        _run(_serve_upstream(args.upstream))
        return 0
    args.requests = args.requests or (1_500 if args.smoke else 100_000)
    args.warmup = args.warmup or (500 if args.smoke else 10_000)
    args.connections = args.connections or (100 if args.smoke else 500)
    if args.smoke:
        args.rounds = min(args.rounds, 2)
    os.environ["FLAKY_STORE_FAILURE_RATE"] = str(args.failure_rate)
    _raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        log = Path(folder) / "sidecar.log"
        with _processes(args.ttl, log) as (port, pid):
            ok = _run(_drive(port, pid, args))
        lines = log.read_text(errors="replace").splitlines()
        print(f"\n  sidecar log: {len(lines)} lines at warning level and above")
        for line in lines[:5]:
            print(f"    {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
