"""Which HTTP client should the forwarder use? A bare pass-through proxy, measured.

Each proxy forwards ``POST /v1/chat/completions`` to a fast fake upstream and relays the
response, with no prompt work, built on a different client: httpx's default transport, httpx
with more keep-alive connections, httpx over ``httpx-aiohttp``, aiohttp directly, and
prompt-middleware's own ``Forwarder`` (aiohttp). The fake upstream hit directly is the ceiling.

Every server runs under uvicorn (uvloop and httptools when installed) in its own process, one
worker. The server under test has a core to itself; the upstream and the load generator
share the others. Throughput: 32 connections for ``--duration`` seconds, ``--rounds`` rounds
interleaving the cases, medians reported. Latency: the median at one connection, minus the
direct upstream's. The CPU columns show what was saturated: the server under test should be
near 100 %, the load generator well below.

The load generator is Debian's ``wrk`` when installed (``bench/setup.sh``), else a small
asyncio one in this file (``--loadgen python`` forces it); its ceiling is the direct row.

    .venv/bin/python bench/upstream_clients.py            # 3 rounds of 5 s per case
    .venv/bin/python bench/upstream_clients.py --smoke    # about 1 s per case, for CI

Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from starlette.types import ASGIApp, Receive, Scope, Send

BODY: Final = (
    b'{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},'
    b'{"role":"user","content":"Say hello to the benchmark."}],"temperature":0.2}'
)
ANSWER: Final = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"Hello, benchmark."},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":20,"completion_tokens":4,"total_tokens":24}}'
)
PATH: Final = "/v1/chat/completions"
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
DROP_REQUEST: Final = HOP_BY_HOP | {b"host", b"content-length"}


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # what ``--serve`` runs
    label: str


CASES: Final = (
    Case("direct", "upstream", "fake upstream, direct"),
    Case("httpx", "httpx", "httpx, default transport"),
    Case("httpx-keepalive", "httpx-keepalive", "httpx, keep-alive pool 100"),
    Case("httpx-aiohttp", "httpx-aiohttp", "httpx over httpx-aiohttp"),
    Case("aiohttp", "aiohttp", "aiohttp directly"),
    Case("forwarder", "forwarder", "prompt_middleware.Forwarder (aiohttp)"),
)


# --- the servers ----------------------------------------------------------------------------


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def upstream_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The fast fake upstream: reads the body, answers one fixed chat.completion."""
    if scope["type"] != "http":
        return
    await _read_body(receive)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


def _target(scope: Scope, base: str) -> str:
    path: str = scope["path"]
    return base + (path[3:] if path.startswith("/v1/") else path)


def _request_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in scope["headers"] if k not in DROP_REQUEST]


def _response_headers(raw: Any) -> list[tuple[bytes, bytes]]:
    return [(k.lower(), v) for k, v in raw if k.lower() not in HOP_BY_HOP]


def httpx_proxy(base: str, transport: str) -> ASGIApp:
    """The same pass-through as the forwarder, on an ``httpx.AsyncClient``."""
    import httpx

    client: httpx.AsyncClient | None = None

    def make_client() -> httpx.AsyncClient:
        if transport == "aiohttp":
            from httpx_aiohttp import AiohttpTransport

            return httpx.AsyncClient(transport=AiohttpTransport())
        if transport == "keepalive":
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
            return httpx.AsyncClient(limits=limits)
        return httpx.AsyncClient()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal client
        if scope["type"] != "http":
            return
        if client is None:
            client = make_client()
        body = await _read_body(receive)
        request = client.build_request(
            scope["method"], _target(scope, base), headers=_request_headers(scope), content=body
        )
        response = await client.send(request, stream=True)
        try:
            headers = _response_headers(response.headers.raw)
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    return app


def aiohttp_proxy(base: str) -> ASGIApp:
    """A minimal pass-through on aiohttp: what the forwarder is without its policy."""
    import aiohttp

    session: aiohttp.ClientSession | None = None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal session
        if scope["type"] != "http":
            return
        if session is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
            )
        body = await _read_body(receive)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in _request_headers(scope)]
        async with session.request(
            scope["method"], _target(scope, base), headers=headers, data=body
        ) as response:
            headers_out = _response_headers(response.raw_headers)
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers_out}
            )
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


def forwarder_app(base: str) -> ASGIApp:
    from prompt_middleware.forwarder import Forwarder
    from prompt_middleware.settings import Settings

    return Forwarder(Settings(upstream_base_url=base))


def build_app(kind: str, base: str) -> ASGIApp:
    builders: dict[str, Callable[[], ASGIApp]] = {
        "upstream": lambda: upstream_app,
        "httpx": lambda: httpx_proxy(base, "default"),
        "httpx-keepalive": lambda: httpx_proxy(base, "keepalive"),
        "httpx-aiohttp": lambda: httpx_proxy(base, "aiohttp"),
        "aiohttp": lambda: aiohttp_proxy(base),
        "forwarder": lambda: forwarder_app(base),
    }
    return builders[kind]()


def serve(kind: str, port: int, base: str) -> None:
    import logging

    import structlog
    import uvicorn

    # Only warnings: a load generator stopping mid-request is not news.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    uvicorn.run(
        build_app(kind, base),
        host="127.0.0.1",
        port=port,
        loop="uvloop" if _installed("uvloop") else "asyncio",
        http="httptools" if _installed("httptools") else "h11",
        lifespan="off",
        log_level="warning",
        access_log=False,
    )


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --- the Python load generator --------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """Keep-alive HTTP/1.1: send, read one Content-Length response, send again."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._buffer = bytearray()
        self._expected = -1
        self._sent = 0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        self._buffer.clear()
        self._expected = -1
        self._sent = time.perf_counter_ns()
        self._transport.write(self._run.request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._expected < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            match = re.search(rb"\r\ncontent-length: *(\d+)", bytes(buffer[:end]), re.IGNORECASE)
            if match is None:
                raise RuntimeError("the load generator needs a Content-Length response")
            self._expected = end + 4 + int(match.group(1))
        if len(buffer) < self._expected:
            return
        run = self._run
        if buffer[9:12] == b"200":
            run.ok += 1
        else:
            run.failed += 1
        if run.latencies is not None:
            run.latencies.append(time.perf_counter_ns() - self._sent)
        if time.perf_counter() < run.deadline:
            self._send()
        else:
            assert self._transport is not None
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._run.closed.release()


class _Run:
    def __init__(self, host: str, port: int, connections: int, duration: float) -> None:
        self.request = (
            f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        self.deadline = time.perf_counter() + duration
        self.ok = 0
        self.failed = 0
        self.latencies: list[int] | None = [] if connections == 1 else None
        self.closed = asyncio.Semaphore(0)


async def _load(host: str, port: int, connections: int, duration: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    run = _Run(host, port, connections, duration)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(connections):
        await loop.create_connection(lambda: _Connection(run), host, port)
    async with asyncio.timeout(duration + 10):  # a server that stops answering fails the run
        for _ in range(connections):
            await run.closed.acquire()
    elapsed = time.perf_counter() - started
    p50 = statistics.median(run.latencies) / 1e6 if run.latencies else None
    busy = (time.process_time() - cpu) / elapsed * 100
    return {"rps": run.ok / elapsed, "errors": run.failed, "p50_ms": p50, "cpu": busy}


def loadgen(url: str, connections: int, duration: float) -> None:
    host, port = url.removeprefix("http://").split(":")
    if _installed("uvloop"):
        import uvloop

        result = uvloop.run(_load(host, int(port), connections, duration))
    else:
        result = asyncio.run(_load(host, int(port), connections, duration))
    print(json.dumps(result))


# --- the driver -----------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    errors: int
    p50_ms: float | None
    server_cpu: float  # percent of one core
    loadgen_cpu: float


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pinned(cores: set[int]) -> Callable[[], None]:
    return lambda: os.sched_setaffinity(0, cores)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(port: int, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)  # polling a child's start-up, not synchronising a test
    raise RuntimeError(f"server on port {port} did not start")


@contextlib.contextmanager
def _servers(
    specs: list[tuple[str, str, set[int]]],
) -> Iterator[dict[str, tuple[str, subprocess.Popen[bytes]]]]:
    """Start ``(name, kind, cores)`` servers in order; each later one may proxy to "upstream"."""
    running: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    try:
        for name, kind, cores in specs:
            port = _free_port()
            base = f"{running['upstream'][0]}/v1" if "upstream" in running else ""
            command = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
            process = subprocess.Popen([*command, "--upstream", base], preexec_fn=_pinned(cores))
            running[name] = (f"http://127.0.0.1:{port}", process)
            _wait_listening(port, process)
        yield running
    finally:
        for _, process in running.values():
            process.terminate()
        for _, process in running.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class LoadGenerator:
    def __init__(self, kind: str, cores: set[int], lua: Path) -> None:
        self.kind = kind
        self.cores = cores
        self.lua = lua

    def run(self, url: str, connections: int, duration: float) -> dict[str, Any]:
        """Requests per second, errors, median latency, and this generator's CPU percent."""
        if self.kind == "wrk":
            command = [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                "--latency",
                "-s",
                str(self.lua),
                url + PATH,
            ]
        else:
            command = [sys.executable, __file__, "--loadgen-run", url]
            command += ["--connections", str(connections), "--duration", str(duration)]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, preexec_fn=_pinned(self.cores)
        )
        cpu = 0.0
        with contextlib.suppress(OSError):
            # Sample just before exit: a finished child's /proc entry is gone.
            while process.poll() is None:
                cpu = _cpu_seconds(process.pid)
                time.sleep(0.05)
        output, _ = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"load generator failed: {output}")
        if self.kind == "wrk":
            return {**_parse_wrk(output), "cpu": cpu / duration * 100}
        result: dict[str, Any] = json.loads(output)  # it measures its own CPU, start-up excluded
        return result


def _parse_wrk(output: str) -> dict[str, Any]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: (.*)"):
        found = re.search(pattern, output)
        if found:
            errors += sum(int(n) for n in re.findall(r"\d+", found.group(1)))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", output)
    p50_ms = None
    if p50:
        p50_ms = float(p50.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[p50.group(2)]
    return {"rps": float(rps.group(1)), "errors": errors, "p50_ms": p50_ms}


def measure(
    generator: LoadGenerator,
    url: str,
    server: subprocess.Popen[bytes],
    connections: int,
    duration: float,
) -> Result:
    before = _cpu_seconds(server.pid)
    result = generator.run(url, connections, duration)
    # Per second of load: the server is idle while the generator starts and stops.
    server_cpu = (_cpu_seconds(server.pid) - before) / duration * 100
    return Result(
        rps=result["rps"],
        errors=result["errors"],
        p50_ms=result["p50_ms"],
        server_cpu=server_cpu,
        loadgen_cpu=result["cpu"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="about 1 s per case, one round")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--cases", default=",".join(case.name for case in CASES))
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    parser.add_argument("--loadgen-run", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.upstream)
        return 0
    if args.loadgen_run:
        loadgen(args.loadgen_run, args.connections, args.duration)
        return 0

    duration, rounds = (1.0, 1) if args.smoke else (args.duration, args.rounds)
    kind = args.loadgen
    if kind == "auto":
        kind = "wrk" if shutil.which("wrk") else "python"
    elif kind == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed: run bench/setup.sh, or use --loadgen python")
    selected = [case for case in CASES if case.name in args.cases.split(",")]
    if not selected or selected[0].name != "direct":
        parser.error("--cases must start with direct: the other rows are relative to it")

    # The server under test alone on one core; the upstream and the load generator elsewhere.
    cores = sorted(os.sched_getaffinity(0))
    tested = {cores[1] if len(cores) > 1 else cores[0]}
    others = set(cores) - tested or tested
    upstream_cores = {sorted(others)[1]} if len(others) > 1 else others
    loadgen_cores = (others - upstream_cores) or others

    with tempfile.TemporaryDirectory() as scratch:
        lua = Path(scratch, "post.lua")
        body = BODY.decode().replace("\\", "\\\\").replace("'", "\\'")
        lua.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = '{body}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        generator = LoadGenerator(kind, loadgen_cores, lua)
        specs = [("upstream", "upstream", upstream_cores)]
        specs += [(case.name, case.kind, tested) for case in selected]
        print(
            f"load generator: {kind} on cores {sorted(loadgen_cores)}; server under test on "
            f"core {sorted(tested)}; upstream on cores {sorted(upstream_cores)}; "
            f"uvloop={_installed('uvloop')} httptools={_installed('httptools')}; "
            f"{args.connections} connections, {duration:g} s x {rounds} rounds",
            flush=True,
        )
        results: dict[str, list[tuple[Result, Result]]] = {case.name: [] for case in selected}
        with _servers(specs) as running:
            for case in selected:  # warm up: pools filled, code paths hot
                url, _ = running[case.name]
                generator.run(url, args.connections, 1.0)
            for round_ in range(rounds):
                for case in selected:
                    url, process = running[case.name]
                    load = measure(generator, url, process, args.connections, duration)
                    single = measure(generator, url, process, 1, duration)
                    results[case.name].append((load, single))
                    print(
                        f"  round {round_ + 1} {case.name:16} {load.rps:9.0f} req/s "
                        f"p50@1 {single.p50_ms or 0:.3f} ms  server {load.server_cpu:3.0f}% "
                        f"loadgen {load.loadgen_cpu:3.0f}%  errors {load.errors + single.errors}",
                        flush=True,
                    )
    print()
    print(_table(selected, results))
    return 0


def _table(cases: list[Case], results: dict[str, list[tuple[Result, Result]]]) -> str:
    def median(name: str, pick: Callable[[tuple[Result, Result]], float | None]) -> float:
        values = [v for v in (pick(r) for r in results[name]) if v is not None]
        return statistics.median(values) if values else float("nan")

    direct_rps = median("direct", lambda r: r[0].rps)
    direct_p50 = median("direct", lambda r: r[1].p50_ms)
    lines = [
        "| client | req/s | ratio to direct upstream | p50 added latency at 1 connection "
        "| server CPU | load generator CPU | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        rps = median(case.name, lambda r: r[0].rps)
        p50 = median(case.name, lambda r: r[1].p50_ms)
        added = (
            "(baseline " + f"{p50:.3f} ms)"
            if case.name == "direct"
            else f"{p50 - direct_p50:.3f} ms"
        )
        errors = sum(load.errors + single.errors for load, single in results[case.name])
        lines.append(
            f"| {case.label} | {rps:,.0f} | {rps / direct_rps:.2f} | {added} "
            f"| {median(case.name, lambda r: r[0].server_cpu):.0f} % "
            f"| {median(case.name, lambda r: r[0].loadgen_cpu):.0f} % | {errors} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    raise SystemExit(main())
