"""What the load benchmarks share: servers in pinned processes, a fast fake upstream, the bare
pass-through proxy, wrk or the Python load generator, medians and tables.

    driver (this process)
      ├─ servers: one uvicorn process each (uvloop, httptools, one worker), pinned to cores
      └─ load generator: wrk (bench/post.lua) or bench/loadgen.py, pinned to other cores

The server under test has a core to itself; the upstream and the load generator share the
rest. Each script serves its apps from its own ``--serve KIND`` entry (``script_server``).
Everything listens on 127.0.0.1; every load is bounded in time; every server is terminated
in a ``finally``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from starlette.types import ASGIApp, Receive, Scope, Send

BENCH: Final = Path(__file__).resolve().parent
PATH: Final = "/v1/chat/completions"
ANSWER: Final = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"Hello, benchmark."},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":20,"completion_tokens":4,"total_tokens":24}}'
)
_CHUNK: Final = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":%s,"finish_reason":%s}]}\n\n'
)
#: A short streamed answer, one event per ``send``: the role, three words, the finish, [DONE].
STREAM_EVENTS: Final = (
    _CHUNK % (b'{"role":"assistant","content":""}', b"null"),
    *(_CHUNK % (b'{"content":"%s "}' % word, b"null") for word in (b"Hello,", b"bench", b"mark.")),
    _CHUNK % (b"{}", b'"stop"'),
    b"data: [DONE]\n\n",
)
_STREAM_FLAG: Final = re.compile(rb'"stream"\s*:\s*true')
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
#: A careful measurement waits up to QUIET_PATIENCE_SECONDS for quiet cores, and measures again
#: up to RETRIES times a run in which the server or the load generator waited longer than
#: MAX_WAIT_PERCENT of the run for its core.
MAX_WAIT_PERCENT: Final = 5.0
RETRIES: Final = 2
QUIET_PATIENCE_SECONDS: Final = 15.0


# --- apps -----------------------------------------------------------------------------------


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def upstream_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The fast fake upstream: one fixed chat.completion, or an SSE stream for "stream": true."""
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    if _STREAM_FLAG.search(body) is None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": ANSWER})
        return
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for event in STREAM_EVENTS:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def target_url(scope: Scope, base: str) -> str:
    path: str = scope["path"]
    return base + (path[3:] if path.startswith("/v1/") else path)


def request_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in scope["headers"] if k not in DROP_REQUEST]


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower(), v) for k, v in raw if k.lower() not in HOP_BY_HOP]


def aiohttp_proxy(base: str, session_factory: Callable[[], Any] | None = None) -> ASGIApp:
    """The floor: a bare pass-through on aiohttp, what the forwarder is without its policy.
    ``session_factory`` replaces the aiohttp session (``bench/hot_path.py``'s stub)."""
    import aiohttp

    def new_session() -> Any:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    make_session = session_factory or new_session
    session: Any = None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal session
        if scope["type"] != "http":
            return
        if session is None:
            session = make_session()
        body = await read_body(receive)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request_headers(scope)]
        async with session.request(
            scope["method"], target_url(scope, base), headers=headers, data=body
        ) as response:
            headers_out = response_headers(response.raw_headers)
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers_out}
            )
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def configure_logging(level: str) -> None:
    """structlog as a production service configures it: JSON lines filtered at ``level``,
    loggers cached on first use. Lines go to /dev/null: their cost is measured, a log
    shipper's is not."""
    import structlog

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the server process
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(sink),
        cache_logger_on_first_use=True,
    )


def serve_app(app: ASGIApp, port: int, *, lifespan: Literal["auto", "on", "off"] = "off") -> None:
    """uvicorn, one worker, configured as ``prompt-middleware serve`` configures it."""
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop" if installed("uvloop") else "asyncio",
        http="httptools" if installed("httptools") else "h11",
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        proxy_headers=False,
    )


# --- server processes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Cores:
    tested: frozenset[int]
    upstream: frozenset[int]
    loadgen: frozenset[int]


def split_cores() -> Cores:
    """The server under test alone on one core; the upstream and the load generator elsewhere."""
    cores = sorted(os.sched_getaffinity(0))
    tested = {cores[1] if len(cores) > 1 else cores[0]}
    others = set(cores) - tested or tested
    upstream = {sorted(others)[1]} if len(others) > 1 else others
    loadgen = (others - upstream) or others
    return Cores(frozenset(tested), frozenset(upstream), frozenset(loadgen))


@dataclass(frozen=True)
class Server:
    """A server to start in its own process: ``argv(port, upstream_url)`` pinned to ``cores``."""

    name: str
    argv: Callable[[int, str], list[str]]
    cores: frozenset[int]


def script_server(
    name: str, script: str, kind: str, cores: frozenset[int], extra: Sequence[str] = ()
) -> Server:
    """``python <script> --serve <kind> --port <port> --upstream <upstream>/v1 <extra>``."""

    def argv(port: int, upstream: str) -> list[str]:
        base = f"{upstream}/v1" if upstream else ""
        command = [sys.executable, script, "--serve", kind, "--port", str(port)]
        return [*command, "--upstream", base, *extra]

    return Server(name, argv, cores)


@dataclass(frozen=True)
class Running:
    url: str
    process: subprocess.Popen[bytes]
    cores: frozenset[int]


def _pinned(cores: frozenset[int]) -> Callable[[], None]:
    return lambda: os.sched_setaffinity(0, cores)


def free_port() -> int:
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
def running(servers: Sequence[Server]) -> Iterator[dict[str, Running]]:
    """Start ``servers`` in order (a later one may proxy to the one named "upstream"); stop
    them all on exit, whatever happened."""
    started: dict[str, Running] = {}
    try:
        for server in servers:
            port = free_port()
            upstream = started["upstream"].url if "upstream" in started else ""
            process = subprocess.Popen(
                server.argv(port, upstream), preexec_fn=_pinned(server.cores)
            )
            started[server.name] = Running(f"http://127.0.0.1:{port}", process, server.cores)
            _wait_listening(port, process)
        yield started
    finally:
        for child in started.values():
            child.process.terminate()
        for child in started.values():
            try:
                child.process.wait(10)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()


def probe(url: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """One POST: status, headers, body. Run before loading a server, so that a broken set-up
    fails the benchmark instead of measuring error responses."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", path, body, {"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


# --- load generation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What one run sends, again and again on every connection: a JSON POST."""

    path: str
    body: bytes


@dataclass
class Result:
    rps: float
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    server_cpu: float  # percent of one core, per second of load
    loadgen_cpu: float
    # Percent of the run spent runnable but waiting for a core: another process was there.
    server_wait: float
    loadgen_wait: float

    @property
    def contended(self) -> bool:
        return max(self.server_wait, self.loadgen_wait) > MAX_WAIT_PERCENT


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_seconds(pid: int) -> float:
    """Time the process's main thread spent runnable on a run queue, not running."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


class LoadGenerator:
    """wrk with ``bench/post.lua`` (``kind="wrk"``) or ``bench/loadgen.py`` (``"python"``)."""

    def __init__(self, kind: str, cores: frozenset[int], scratch: Path) -> None:
        self.kind = kind
        self.cores = cores
        self._scratch = scratch
        self._files: dict[bytes, Path] = {}

    def _body_file(self, body: bytes) -> Path:
        path = self._files.get(body)
        if path is None:
            path = self._scratch / f"body-{len(self._files)}.json"
            path.write_bytes(body)
            self._files[body] = path
        return path

    def run(self, url: str, load: Load, connections: int, duration: float) -> dict[str, Any]:
        """Requests per second, errors, p50 and p99, and this generator's CPU percent."""
        body = str(self._body_file(load.body))
        if self.kind == "wrk":
            seconds = max(1, round(duration))
            command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
            command += ["-s", str(BENCH / "post.lua"), url + load.path, body]
        else:
            command = [sys.executable, str(BENCH / "loadgen.py"), url + load.path, body]
            command += ["--connections", str(connections), "--duration", str(duration)]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, preexec_fn=_pinned(self.cores)
        )
        cpu = waited = 0.0
        try:
            with contextlib.suppress(OSError):
                # Sample just before exit: a finished child's /proc entry is gone.
                while process.poll() is None:
                    cpu, waited = _cpu_seconds(process.pid), _wait_seconds(process.pid)
                    time.sleep(0.05)
            output, _ = process.communicate(timeout=duration + 30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            raise RuntimeError(f"load generator failed: {output}")
        wait = waited / duration * 100
        if self.kind == "wrk":
            return {**parse_wrk(output), "cpu": cpu / duration * 100, "wait": wait}
        result: dict[str, Any] = json.loads(output)  # it measures its own CPU, start-up excluded
        return {**result, "wait": wait}


def parse_wrk(output: str) -> dict[str, Any]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: (.*)"):
        found = re.search(pattern, output)
        if found:
            errors += sum(int(n) for n in re.findall(r"\d+", found.group(1)))

    def percentile(label: str) -> float | None:
        found = re.search(label + r"%\s+([\d.]+)(us|ms|s)\b", output)
        if found is None:
            return None
        return float(found.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[found.group(2)]

    return {
        "rps": float(rps.group(1)),
        "errors": errors,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
    }


def _busy_jiffies(cores: Iterable[int]) -> tuple[int, int]:
    """(busy, total) clock ticks of ``cores`` since boot, from /proc/stat."""
    busy = total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            ticks = [int(v) for v in values]
            total += sum(ticks[:8])
            busy += sum(ticks[:8]) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy, total


def wait_quiet(cores: Iterable[int], patience: float, threshold: float = 0.1) -> None:
    """Wait, at most ``patience`` seconds, until ``cores`` are idle (busy under ``threshold``
    over half a second): between runs our own servers are idle, so what is busy there is
    another process, which would take the core from the server under test."""
    cores = set(cores)
    deadline = time.monotonic() + patience
    waited = False
    while True:
        busy, total = _busy_jiffies(cores)
        time.sleep(0.5)
        busy_after, total_after = _busy_jiffies(cores)
        load = (busy_after - busy) / max(1, total_after - total)
        if load < threshold or time.monotonic() >= deadline:
            if waited:
                print(f"    (waited for quiet cores; now {load:.0%} busy)", flush=True)
            return
        waited = True


def measure(
    generator: LoadGenerator,
    server: Running,
    load: Load,
    connections: int,
    duration: float,
    *,
    careful: bool = False,
) -> Result:
    """One run. ``careful``: first wait (a while) for the cores to be free of other processes,
    and measure again (a few times) while one took the server's or the load generator's core
    anyway (other test runs on a shared machine): such a run measures the neighbour, not the
    server."""
    pid = server.process.pid
    cores = set(server.cores) | set(generator.cores)

    def run() -> Result:
        if careful:
            wait_quiet(cores, QUIET_PATIENCE_SECONDS)
        cpu, waited = _cpu_seconds(pid), _wait_seconds(pid)
        raw = generator.run(server.url, load, connections, duration)
        # Per second of load: the server is idle while the generator starts and stops.
        return Result(
            rps=raw["rps"],
            errors=raw["errors"],
            p50_ms=raw["p50_ms"],
            p99_ms=raw["p99_ms"],
            server_cpu=(_cpu_seconds(pid) - cpu) / duration * 100,
            loadgen_cpu=raw["cpu"],
            server_wait=(_wait_seconds(pid) - waited) / duration * 100,
            loadgen_wait=raw["wait"],
        )

    result = run()
    for _ in range(RETRIES if careful else 0):
        if not result.contended:
            break
        print(
            f"    contended: the server waited {result.server_wait:.0f} % of the run for its "
            f"core, the load generator {result.loadgen_wait:.0f} %; measuring again",
            flush=True,
        )
        result = run()
    return result


def measure_together(
    generator: LoadGenerator,
    servers: Sequence[Running],
    load: Load,
    connections: int,
    duration: float,
) -> list[float]:
    """Requests per second of each server, all of them loaded at the same time.

    The servers are pinned to the same core, so the scheduler, fair between busy processes,
    splits it evenly between them: the ratio of their request rates is the inverse ratio of
    their CPU per request, taken over the same seconds. A slow spell of a shared machine
    slows them alike, where runs one after the other would see it in one server only.
    """
    wait_quiet(set().union(*(s.cores for s in servers)) | generator.cores, QUIET_PATIENCE_SECONDS)
    generator._body_file(load.body)  # written once, before the runs start side by side
    with ThreadPoolExecutor(len(servers)) as pool:
        runs = [
            pool.submit(generator.run, server.url, load, connections, duration)
            for server in servers
        ]
        return [float(run.result()["rps"]) for run in runs]


def usage(result: Result) -> str:
    """CPU of the server and the load generator, and how long each waited for its core."""
    return (
        f"server {result.server_cpu:3.0f}% (waited {result.server_wait:2.0f}%) "
        f"loadgen {result.loadgen_cpu:3.0f}% (waited {result.loadgen_wait:2.0f}%)"
    )


def contention_note(results: Iterable[Result]) -> str:
    everything = list(results)
    contended = sum(result.contended for result in everything)
    return (
        f"{contended} of {len(everything)} runs were contended (another process took the "
        f"server's or the load generator's core for > {MAX_WAIT_PERCENT:g} % of the run); "
        "rounds with one are left out of the medians when any round is clean"
    )


def clean_rounds(rounds: Sequence[Sequence[Result]]) -> list[Sequence[Result]]:
    """The rounds none of whose runs was contended; all of them when none is clean."""
    clean = [round_ for round_ in rounds if not any(r.contended for r in round_)]
    return clean or list(rounds)


# --- the command line and the report --------------------------------------------------------


def add_load_arguments(parser: argparse.ArgumentParser, *, duration: float = 5.0) -> None:
    parser.add_argument("--smoke", action="store_true", help="about 1 s per case, one round")
    parser.add_argument("--duration", type=float, default=duration, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)


def loadgen_kind(parser: argparse.ArgumentParser, requested: str) -> str:
    if requested == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if requested == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed: run bench/setup.sh, or use --loadgen python")
    return requested


def describe(kind: str, cores: Cores, connections: int, duration: float, rounds: int) -> str:
    generator = "wrk" if kind == "wrk" else "the Python load generator (bench/loadgen.py)"
    if kind != "wrk" and shutil.which("wrk") is None:
        generator += ", as wrk is not installed: its ceiling is the direct rows"
    return (
        f"load generator: {generator} on cores {sorted(cores.loadgen)}; server under test on "
        f"core {sorted(cores.tested)}; upstream on cores {sorted(cores.upstream)}; "
        f"uvloop={installed('uvloop')} httptools={installed('httptools')}; "
        f"{connections} connections, {duration:g} s x {rounds} rounds; "
        f"{os.cpu_count()} CPUs: {cpu_model()}"
    )


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def median(values: Iterable[float | None]) -> float:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else float("nan")


def mark(met: bool) -> str:
    return "✓" if met else "✗"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> str:
    """A Markdown table; ``align`` holds "l" or "r" per column (default: first l, others r)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(cells) + " |" for cells in (header, rule, *rows)]
    return "\n".join(lines)
