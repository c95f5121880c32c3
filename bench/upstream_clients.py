"""Which HTTP client should the forwarder use? A bare pass-through proxy, measured.

Each proxy forwards ``POST /v1/chat/completions`` to a fast fake upstream and relays the
response, with no prompt work, built on a different client: httpx's default transport, httpx
with more keep-alive connections, httpx over ``httpx-aiohttp``, aiohttp directly,
prompt-middleware's own ``Forwarder`` (aiohttp), pyreqwest (reqwest in Rust, on a runtime
thread of its own), and a client sketched here on asyncio and httptools (no TLS, timeouts or
error handling: how fast a hand-written client could be, not one to ship). The fake upstream
hit directly is the ceiling.

Every server runs under uvicorn (uvloop and httptools when installed) in its own process, one
worker. The server under test has a core to itself; the upstream and the load generator
share the others. Throughput: 32 connections for ``--duration`` seconds, ``--rounds`` rounds
interleaving the cases, medians reported. Latency: the median at one connection, minus the
direct upstream's. The CPU columns show what was saturated: the server under test should be
near 100 %, the load generator well below.

The load generator is Debian's ``wrk`` when installed (``bench/setup.sh``), else
``bench/loadgen.py`` (``--loadgen python`` forces it); its ceiling is the direct row.

    .venv/bin/python bench/upstream_clients.py            # 3 rounds of 5 s per case
    .venv/bin/python bench/upstream_clients.py --smoke    # about 1 s per case, for CI

Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast
from urllib.parse import urlsplit

import httptools
from _common import (
    PATH,
    Load,
    LoadGenerator,
    Result,
    add_load_arguments,
    aiohttp_proxy,
    clean_rounds,
    configure_logging,
    contention_note,
    describe,
    loadgen_kind,
    measure,
    median,
    read_body,
    request_headers,
    response_headers,
    running,
    script_server,
    serve_app,
    split_cores,
    table,
    target_url,
    upstream_app,
    usage,
)
from starlette.types import ASGIApp, Receive, Scope, Send

BODY: Final = (
    b'{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},'
    b'{"role":"user","content":"Say hello to the benchmark."}],"temperature":0.2}'
)


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
    Case("pyreqwest", "pyreqwest", "pyreqwest (Rust reqwest, its own runtime thread)"),
    Case("httptools", "httptools", "hand-written on httptools (a sketch, see below)"),
)


# --- the servers ----------------------------------------------------------------------------


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
        body = await read_body(receive)
        request = client.build_request(
            scope["method"], target_url(scope, base), headers=request_headers(scope), content=body
        )
        response = await client.send(request, stream=True)
        try:
            headers = response_headers(response.headers.raw)
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    return app


def pyreqwest_proxy(base: str) -> ASGIApp:
    """The same pass-through on pyreqwest: reqwest and hyper in Rust, bound to asyncio."""
    from pyreqwest.client import Client, ClientBuilder

    client: Client | None = None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal client
        if scope["type"] != "http":
            return
        if client is None:
            client = ClientBuilder().http1_only().gzip(False).follow_redirects(False).build()
        body = await read_body(receive)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request_headers(scope)]
        request = client.request(scope["method"], target_url(scope, base))
        async with request.headers(headers).body_bytes(body).build_streamed() as response:
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": response_headers(raw),
                }
            )
            reader = response.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                await send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


class _Connection(asyncio.Protocol):
    """One keep-alive connection of the hand-written client: httptools parses the response."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.status = 0
        self.head_done = self.complete = self.lost = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake()

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.headers, self.chunks = [], []
        self.head_done = self.complete = False
        self.transport.write(request)

    async def wait(self) -> None:
        if self.lost:
            raise ConnectionError("the upstream closed the connection")
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()


def httptools_proxy(base: str) -> ASGIApp:
    """The same pass-through on a client written here on asyncio and httptools: a keep-alive
    pool, Content-Length requests, responses relayed as they are parsed. A sketch of what a
    hand-written client could reach: no TLS, timeouts, 1xx/HEAD handling or error mapping,
    which a real one would need (and which aiohttp has)."""
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    host_line = b"host: %s:%d\r\n" % (host.encode("ascii"), port)
    idle: list[_Connection] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path = target_url(scope, parts.path).encode("latin-1")
        head = [scope["method"].encode("ascii"), b" ", path, b" HTTP/1.1\r\n", host_line]
        for name, value in request_headers(scope):
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        if idle:
            connection = idle.pop()
        else:
            loop = asyncio.get_running_loop()
            _, connection = await loop.create_connection(_Connection, host, port)
        connection.send(b"".join(head) + body)
        while not connection.head_done:
            await connection.wait()
        headers = response_headers(connection.headers)
        await send({"type": "http.response.start", "status": connection.status, "headers": headers})
        while True:
            chunk = b"".join(connection.chunks)
            connection.chunks.clear()
            if connection.complete:
                break
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            else:
                await connection.wait()
        if connection.parser.should_keep_alive() and not connection.lost:
            idle.append(connection)
        elif connection.transport is not None:
            connection.transport.close()
        await send({"type": "http.response.body", "body": chunk})

    return app


def forwarder_app(base: str) -> ASGIApp:
    from prompt_middleware.settings import Settings
    from prompt_middleware.sidecar.forwarder import Forwarder

    return Forwarder(Settings(upstream_base_url=base))


def build_app(kind: str, base: str) -> ASGIApp:
    builders: dict[str, Callable[[], ASGIApp]] = {
        "upstream": lambda: upstream_app,
        "httpx": lambda: httpx_proxy(base, "default"),
        "httpx-keepalive": lambda: httpx_proxy(base, "keepalive"),
        "httpx-aiohttp": lambda: httpx_proxy(base, "aiohttp"),
        "aiohttp": lambda: aiohttp_proxy(base),
        "forwarder": lambda: forwarder_app(base),
        "pyreqwest": lambda: pyreqwest_proxy(base),
        "httptools": lambda: httptools_proxy(base),
    }
    return builders[kind]()


# --- the driver -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser)
    parser.add_argument("--cases", default=",".join(case.name for case in CASES))
    args = parser.parse_args(argv)
    if args.serve:
        # Only warnings: a load generator stopping mid-request is not news.
        configure_logging("warning")
        serve_app(build_app(args.serve, args.upstream), args.port)
        return 0

    duration, rounds = (1.0, 1) if args.smoke else (args.duration, args.rounds)
    careful = not args.smoke
    kind = loadgen_kind(parser, args.loadgen)
    selected = [case for case in CASES if case.name in args.cases.split(",")]
    if not selected or selected[0].name != "direct":
        parser.error("--cases must start with direct: the other rows are relative to it")

    cores = split_cores()
    load = Load(PATH, BODY)
    print(describe(kind, cores, args.connections, duration, rounds), flush=True)
    servers = [script_server("upstream", __file__, "upstream", cores.upstream)]
    servers += [script_server(case.name, __file__, case.kind, cores.tested) for case in selected]
    results: dict[str, list[tuple[Result, Result]]] = {case.name: [] for case in selected}
    with tempfile.TemporaryDirectory() as scratch, running(servers) as started:
        generator = LoadGenerator(kind, cores.loadgen, Path(scratch))
        for case in selected if not args.smoke else ():  # warm up: pools filled, code hot
            generator.run(started[case.name].url, load, args.connections, 1.0)
        for round_ in range(rounds):
            for case in selected:
                server = started[case.name]
                loaded = measure(
                    generator, server, load, args.connections, duration, careful=careful
                )
                single = measure(generator, server, load, 1, duration, careful=careful)
                results[case.name].append((loaded, single))
                print(
                    f"  round {round_ + 1} {case.name:16} {loaded.rps:9.0f} req/s "
                    f"p50@1 {single.p50_ms or 0:.3f} ms  {usage(loaded)}  "
                    f"errors {loaded.errors + single.errors}",
                    flush=True,
                )
    print()
    print(_table(selected, results))
    print(contention_note(r for rounds in results.values() for pair in rounds for r in pair))
    return 0


def _table(cases: list[Case], results: dict[str, list[tuple[Result, Result]]]) -> str:
    def of(name: str, pick: Callable[[Sequence[Result]], float | None]) -> float:
        return median(pick(r) for r in clean_rounds(results[name]))

    direct_rps = of("direct", lambda r: r[0].rps)
    direct_p50 = of("direct", lambda r: r[1].p50_ms)
    rows = []
    for case in cases:
        rps = of(case.name, lambda r: r[0].rps)
        p50 = of(case.name, lambda r: r[1].p50_ms)
        added = (
            f"(baseline {p50:.3f} ms)" if case.name == "direct" else f"{p50 - direct_p50:.3f} ms"
        )
        errors = sum(loaded.errors + single.errors for loaded, single in results[case.name])
        rows.append(
            [
                case.label,
                f"{rps:,.0f}",
                f"{rps / direct_rps:.2f}",
                added,
                f"{of(case.name, lambda r: r[0].server_cpu):.0f} %",
                f"{of(case.name, lambda r: r[0].loadgen_cpu):.0f} %",
                str(errors),
            ]
        )
    header = [
        "client",
        "req/s",
        "ratio to direct upstream",
        "p50 added latency at 1 connection",
        "server CPU",
        "load generator CPU",
        "errors",
    ]
    return table(header, rows)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    raise SystemExit(main())
