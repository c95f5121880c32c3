"""The sidecar under load, against the fake upstream hit directly and the floor, in one run.

Four servers, each uvicorn with one worker (uvloop, httptools) in its own process:

* the fast fake upstream, on the load generator's core: the sidecar's and the floor's upstream;
* ``direct``: a second fake upstream on the tested core, hit directly (the ceiling);
* ``floor``: the bare aiohttp pass-through proxy (``bench/_common.py``) on the tested core:
  same server, same upstream client, no prompt work, the fastest a Python sidecar of this
  design can be;
* ``sidecar``: ``prompt-middleware serve`` itself (``cli.main(["serve", ...])`` with its
  settings in the environment) on the tested core: the ``Sidecar`` app with metrics on, sidecar
  keys off, the forwarder, prompts from a local folder in a temp dir, logging at warning.

Three cases, with the 2 KB body of ``bench/hot_path.py``: a managed request (``support/answer``
from the prompt folder, a cache hit after the first), an unmanaged one, and a managed one with
``"stream": true`` (the fake upstream streams six SSE events). For each: requests per second and
p50/p99 latency at 32 connections, and p50 latency at one connection. ``--rounds`` rounds,
the servers' order rotating; in each round and case the loaded runs of the three servers come
back to back, and then the three are loaded at the same time on their shared core
(``_common.measure_together``): those ratios are taken over the same seconds, which a shared
machine's slow spells cannot skew. Medians of per-round ratios.

    .venv/bin/python bench/sidecar_load.py            # 5 rounds of 3 s per case and server
    .venv/bin/python bench/sidecar_load.py --smoke    # about 1 s each, for CI
    .venv/bin/python bench/sidecar_load.py --traces   # and the sidecar with traces on
    .venv/bin/python bench/sidecar_load.py --traces --hanging-collector

``--traces`` adds a fourth server, ``traced``: the same sidecar with
``PROMPT_MIDDLEWARE_TRACES=otlp`` (README, "Traces"), its spans exported to the fast fake
upstream's process, which answers every POST with a 200 (an OTLP collector that accepts
everything). ``--hanging-collector`` points it instead at a socket that accepts connections
and never answers: the export thread hangs, the queue fills, spans are dropped and counted.
Ratios of ``traced`` to ``sidecar`` (issue 15's target: ≥ 0.85 of the traces-off throughput,
loaded together; with a hanging collector, p50 within noise of traces off) join the table,
and the spans dropped are read from the traced sidecar's ``/metrics`` at the end. With
``--smoke``, only the managed case is loaded (every case is still checked).

Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

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
    mark,
    measure,
    measure_together,
    median,
    probe,
    running,
    script_server,
    serve_app,
    split_cores,
    table,
    upstream_app,
    usage,
)
from _common import Running as RunningServer
from hot_path import PROMPT, body_of

from prompt_middleware import ChatMessage

SERVERS: Final = ("direct", "floor", "sidecar")
TRACED: Final = "traced"  # the sidecar with traces on (--traces)
#: ``--traces-endpoint`` value meaning "the fake upstream's own URL": a collector that accepts.
UPSTREAM_COLLECTOR: Final = "upstream"
MANAGED: Final = body_of(2_000, managed=True, store="file")


@dataclass(frozen=True)
class Case:
    name: str
    load: Load


CASES: Final = (
    Case("managed", Load(PATH, MANAGED)),
    Case("unmanaged", Load(PATH, body_of(2_000, managed=False))),
    Case("streaming", Load(PATH, json.dumps({**json.loads(MANAGED), "stream": True}).encode())),
)
# Ratios of the managed case against issue 5's targets.
TARGET_DIRECT: Final = 0.30
TARGET_FLOOR: Final = 0.80
TARGET_ADDED_MS: Final = 0.6


def write_prompt(folder: Path) -> None:
    """``bench/hot_path.py``'s prompt as a file of the local prompt folder."""
    assert not isinstance(PROMPT.prompt, str)
    messages: list[dict[str, Any]] = [
        {"role": m.role, "content": m.content}
        if isinstance(m, ChatMessage)
        else {"type": "placeholder", "name": m.name}
        for m in PROMPT.prompt
    ]
    document = {
        "type": PROMPT.type,
        "prompt": messages,
        "config": PROMPT.config,
        "labels": list(PROMPT.labels),
        "version": PROMPT.version,
    }
    path = folder / f"{PROMPT.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


def serve_sidecar(
    port: int,
    upstream: str,
    prompts_dir: str,
    traces_endpoint: str | None = None,
    *,
    sampler: str | None = None,
    trace_content: bool = True,
) -> int:
    """Run ``prompt-middleware serve`` in this process, configured as a deployment would be;
    with traces on when ``traces_endpoint`` names an OTLP collector (``sampler``: the value of
    ``OTEL_TRACES_SAMPLER`` and its argument, ``"traceidratio:0.1"``; ``trace_content``:
    ``PROMPT_MIDDLEWARE_TRACE_CONTENT``)."""
    from prompt_middleware.sidecar.cli import main as cli

    for name in list(os.environ):  # nothing inherited may configure it
        if name.startswith(("PROMPT_MIDDLEWARE_", "LANGFUSE_", "HUMANLOOP_", "OTEL_")):
            del os.environ[name]
    os.environ.update(
        {
            "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL": upstream,
            "PROMPT_MIDDLEWARE_PROMPTS_DIR": prompts_dir,
            "PROMPT_MIDDLEWARE_DEFAULT_STORE": "file",
            "PROMPT_MIDDLEWARE_LOG_LEVEL": "warning",
        }
    )
    if traces_endpoint is not None:
        if traces_endpoint == UPSTREAM_COLLECTOR:
            traces_endpoint = upstream.removesuffix("/v1")
        os.environ["PROMPT_MIDDLEWARE_TRACES"] = "otlp"
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = traces_endpoint
        if sampler is not None:
            name, _, argument = sampler.partition(":")
            os.environ["OTEL_TRACES_SAMPLER"] = name
            if argument:
                os.environ["OTEL_TRACES_SAMPLER_ARG"] = argument
        if not trace_content:
            os.environ["PROMPT_MIDDLEWARE_TRACE_CONTENT"] = "false"
    return cli(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"])


@contextlib.contextmanager
def hanging_collector() -> Iterator[str]:
    """A collector that never answers: a listening socket nobody accepts on (the kernel
    completes the connections, and the requests sent on them wait for ever)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def stop_traced(traced: RunningServer) -> None:
    """Report the traced sidecar's dropped spans, and stop it while its collector still
    runs: its last spans are exported at shutdown."""
    dropped = dropped_spans(traced.url)
    print(f"traces: {dropped} spans dropped (prompt_middleware_trace_spans_dropped_total)")
    traced.process.terminate()
    traced.process.wait(30)


def dropped_spans(url: str) -> str:
    """``prompt_middleware_trace_spans_dropped_total`` of a sidecar's ``/metrics``."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("prompt_middleware_trace_spans_dropped_total "):
                return str(line.split()[1])
    return "?"


def check(urls: dict[str, str]) -> None:
    """Every case answers 200 everywhere, the sidecars' managed cases really are managed, and
    the streams stream."""
    for case in CASES:
        for server in urls:
            status, headers, body = probe(urls[server], case.load.path, case.load.body)
            where = f"{case.name} on {server}"
            if status != 200:
                raise RuntimeError(f"{where}: {status} {body[:300]!r}")
            managed = headers.get("x-prompt-store") == "file"
            if managed != (server in ("sidecar", TRACED) and case.name != "unmanaged"):
                raise RuntimeError(f"{where}: x-prompt-store is {headers.get('x-prompt-store')}")
            streamed = headers.get("content-type", "").startswith("text/event-stream")
            if streamed != (case.name == "streaming") or (
                streamed and not body.endswith(b"data: [DONE]\n\n")
            ):
                raise RuntimeError(f"{where}: not the expected answer: {body[:300]!r}")


Round = tuple[Result, Result]  # at 32 connections, at one
Results = dict[tuple[str, str], list[Round]]  # (case, server) -> rounds
Together = dict[str, list[dict[str, float]]]  # case -> rounds of req/s by server, loaded at once


@dataclass(frozen=True)
class Plan:
    """What one run measures: which servers (and so which ratios), under which cases."""

    servers: tuple[str, ...]
    cases: tuple[Case, ...]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, duration=3.0)
    # More, shorter rounds: this kind of machine drifts over seconds, and a median of five
    # per-round ratios moves less than one of three.
    parser.set_defaults(rounds=5)
    parser.add_argument("--traces", action="store_true", help="also the sidecar, traces on")
    parser.add_argument(
        "--hanging-collector",
        action="store_true",
        help="with --traces: the collector accepts connections and never answers",
    )
    parser.add_argument("--prompts-dir", help=argparse.SUPPRESS)
    parser.add_argument("--traces-endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--traces-sampler", help=argparse.SUPPRESS)
    parser.add_argument("--no-trace-content", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve == "sidecar":
        return serve_sidecar(
            args.port,
            args.upstream,
            args.prompts_dir,
            args.traces_endpoint,
            sampler=args.traces_sampler,
            trace_content=not args.no_trace_content,
        )
    if args.serve:
        configure_logging("warning")
        app = upstream_app if args.serve == "upstream" else aiohttp_proxy(args.upstream)
        serve_app(app, args.port)
        return 0

    traces = args.traces or args.hanging_collector
    plan = Plan(
        servers=(*SERVERS, TRACED) if traces else SERVERS,
        # With --smoke and traces, the managed case alone is loaded: the one the target is on.
        cases=CASES[:1] if traces and args.smoke else CASES,
    )
    with contextlib.ExitStack() as stack:
        collector = UPSTREAM_COLLECTOR
        if args.hanging_collector:
            collector = stack.enter_context(hanging_collector())
            print(f"traces: to a collector that never answers ({collector})", flush=True)
        elif traces:
            print("traces: to a collector that accepts (the fake upstream's process)")
        return run(parser, args, plan, collector)


def run(
    parser: argparse.ArgumentParser, args: argparse.Namespace, plan: Plan, collector: str
) -> int:
    duration, rounds = (1.0, 1) if args.smoke else (args.duration, args.rounds)
    kind = loadgen_kind(parser, args.loadgen)
    cores = split_cores()
    print(describe(kind, cores, args.connections, duration, rounds), flush=True)
    results: Results = {(c.name, server): [] for c in plan.cases for server in plan.servers}
    together: Together = {case.name: [] for case in plan.cases}
    with tempfile.TemporaryDirectory() as scratch:
        prompts = Path(scratch, "prompts")
        write_prompt(prompts)
        sidecar_argv = ["--prompts-dir", str(prompts)]
        servers = [
            script_server("upstream", __file__, "upstream", cores.upstream),
            script_server("direct", __file__, "upstream", cores.tested),
            script_server("floor", __file__, "floor", cores.tested),
            script_server("sidecar", __file__, "sidecar", cores.tested, sidecar_argv),
        ]
        if TRACED in plan.servers:
            traced_argv = [*sidecar_argv, "--traces-endpoint", collector]
            servers.append(script_server(TRACED, __file__, "sidecar", cores.tested, traced_argv))
        with running(servers) as started:
            check({name: started[name].url for name in plan.servers})
            generator = LoadGenerator(kind, cores.loadgen, Path(scratch))
            if not args.smoke:  # warm up: pools filled, code paths hot
                for case in plan.cases:
                    for server in plan.servers:
                        generator.run(started[server].url, case.load, args.connections, 1.0)
            for round_ in range(rounds):
                run_round(round_, plan, started, generator, args, duration, results, together)
            if TRACED in plan.servers:
                stop_traced(started[TRACED])
    print()
    print(_servers_table(plan, results))
    print()
    print(_ratios_table(plan, results, together))
    print(contention_note(r for rounds in results.values() for pair in rounds for r in pair))
    return 0


def run_round(
    round_: int,
    plan: Plan,
    started: dict[str, RunningServer],
    generator: LoadGenerator,
    args: argparse.Namespace,
    duration: float,
    results: Results,
    together: Together,
) -> None:
    careful = not args.smoke
    # Rotate the servers' order: a machine that slows down during a round must not always
    # penalise the same one.
    shift = round_ % len(plan.servers)
    order = plan.servers[shift:] + plan.servers[:shift]
    for case in plan.cases:
        # The loaded runs of the servers back to back, then the single-connection ones: a
        # ratio compares runs seconds apart, not a whole case apart.
        loaded_runs = {
            server: measure(
                generator, started[server], case.load, args.connections, duration, careful=careful
            )
            for server in order
        }
        for server in order:
            loaded = loaded_runs[server]
            single = measure(generator, started[server], case.load, 1, duration, careful=careful)
            results[(case.name, server)].append((loaded, single))
            print(
                f"  round {round_ + 1} {case.name:9} {server:7} "
                f"{loaded.rps:7.0f} req/s p50 {loaded.p50_ms or 0:6.2f} ms "
                f"p99 {loaded.p99_ms or 0:6.2f} ms p50@1 {single.p50_ms or 0:.3f} ms "
                f"{usage(loaded)} errors {loaded.errors + single.errors}",
                flush=True,
            )
        rates = measure_together(
            generator,
            [started[server] for server in plan.servers],
            case.load,
            args.connections,
            duration,
        )
        together[case.name].append(dict(zip(plan.servers, rates, strict=True)))
        print(
            f"  round {round_ + 1} {case.name:9} together: "
            + ", ".join(f"{s} {r:.0f}" for s, r in zip(plan.servers, rates, strict=True))
            + " req/s",
            flush=True,
        )


def _servers_table(plan: Plan, results: Results) -> str:
    rows = []
    for case in plan.cases:
        for server in plan.servers:
            rounds = clean_rounds(results[(case.name, server)])
            rows.append(
                [
                    case.name,
                    server,
                    f"{median(r.rps for r, _ in rounds):,.0f}",
                    f"{median(r.p50_ms for r, _ in rounds):.2f} ms",
                    f"{median(r.p99_ms for r, _ in rounds):.2f} ms",
                    f"{median(s.p50_ms for _, s in rounds):.3f} ms",
                    f"{median(r.server_cpu for r, _ in rounds):.0f} %",
                    f"{median(r.loadgen_cpu for r, _ in rounds):.0f} %",
                    str(sum(r.errors + s.errors for r, s in rounds)),
                    f"{len(rounds)} / {len(results[(case.name, server)])}",
                ]
            )
    header = [
        "case",
        "server",
        "req/s (32 conn.)",
        "p50 (32 conn.)",
        "p99 (32 conn.)",
        "p50 (1 conn.)",
        "server CPU",
        "load generator CPU",
        "errors",
        "rounds used",
    ]
    return table(header, rows, "llrrrrrrrr")


def _throughput(ours: Round, theirs: Round) -> float:
    return ours[0].rps / theirs[0].rps


def _added_p50(ours: Round, theirs: Round) -> float | None:
    single, baseline = ours[1].p50_ms, theirs[1].p50_ms
    return None if single is None or baseline is None else single - baseline


def _added_p50_loaded(ours: Round, theirs: Round) -> float | None:
    loaded, baseline = ours[0].p50_ms, theirs[0].p50_ms
    return None if loaded is None or baseline is None else loaded - baseline


@dataclass(frozen=True)
class Ratio:
    label: str
    server: str
    baseline: str
    of: Callable[[Round, Round], float | None]  # one round of each -> the ratio or difference
    unit: str = ""
    target: float | None = None  # issue 5's, for the managed case
    at_most: bool = False


RATIOS: Final = (
    Ratio("sidecar / direct upstream, req/s, in turn", "sidecar", "direct", _throughput),
    Ratio("sidecar / floor, req/s, in turn", "sidecar", "floor", _throughput),
    Ratio("floor / direct upstream, req/s, in turn", "floor", "direct", _throughput),
    Ratio(
        "added p50 at 1 connection, vs direct", "sidecar", "direct", _added_p50, " ms", 0.6, True
    ),
    Ratio("added p50 at 1 connection, vs floor", "sidecar", "floor", _added_p50, " ms"),
)
#: With --traces: the traced sidecar against the same sidecar with traces off.
TRACED_RATIOS: Final = (
    Ratio("traces on / off, req/s, in turn", TRACED, "sidecar", _throughput),
    Ratio(
        "added p50 at 32 connections, traces on vs off", TRACED, "sidecar", _added_p50_loaded, " ms"
    ),
    Ratio("added p50 at 1 connection, traces on vs off", TRACED, "sidecar", _added_p50, " ms"),
)


TOGETHER: Final = (
    # (label, server, baseline, issue 5's target for the managed case)
    ("sidecar / direct upstream, req/s, loaded together", "sidecar", "direct", 0.30),
    ("sidecar / floor, req/s, loaded together", "sidecar", "floor", 0.80),
    ("floor / direct upstream, req/s, loaded together", "floor", "direct", None),
)
#: With --traces (issue 15's target for the managed case).
TRACED_TOGETHER: Final = (("traces on / off, req/s, loaded together", TRACED, "sidecar", 0.85),)


def _ratios_table(plan: Plan, results: Results, together: Together) -> str:
    rows = []
    traced = TRACED in plan.servers
    cases = plan.cases
    # The servers loaded at the same time on their shared core: each ratio is taken over
    # the same seconds, so a slow spell of the machine cannot favour one side
    # (_common.measure_together). The targets are judged on these.
    for label, server, baseline, target in (*TOGETHER, *(TRACED_TOGETHER if traced else ())):
        values = {
            case.name: median(r[server] / r[baseline] for r in together[case.name])
            for case in cases
        }
        goal = "—" if target is None else f"≥ {target:.2f}"
        met = "" if target is None else mark(values["managed"] >= target)
        rows.append([label, *(f"{values[case.name]:.2f}" for case in cases), goal, met])
    for ratio in (*RATIOS, *(TRACED_RATIOS if traced else ())):
        values = {}
        for case in cases:
            # Paired by round: both sides of a ratio were measured minutes apart at most.
            pairs = clean_rounds(
                [
                    (*ours, *theirs)
                    for ours, theirs in zip(
                        results[(case.name, ratio.server)],
                        results[(case.name, ratio.baseline)],
                        strict=True,
                    )
                ]
            )
            values[case.name] = median(ratio.of((a, b), (c, d)) for a, b, c, d in pairs)
        goal, met = "—", ""
        if ratio.target is not None:
            goal = f"{'≤' if ratio.at_most else '≥'} {ratio.target:.2f}{ratio.unit}"
            value = values["managed"]
            met = mark(value <= ratio.target if ratio.at_most else value >= ratio.target)
        cells = [f"{values[case.name]:.2f}{ratio.unit}" for case in cases]
        rows.append([ratio.label, *cells, goal, met])
    header = ["median of per-round ratios", *(c.name for c in cases), "target (managed)", "met"]
    return table(header, rows, "l" + "r" * len(cases) + "rl")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    raise SystemExit(main())
