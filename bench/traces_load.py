"""What traces cost the sidecar, setting by setting: loaded together, and CPU per request alone.

Six sidecars (``prompt-middleware serve``, as ``bench/sidecar_load.py`` runs it: uvicorn with
one worker, prompts from a local folder, a cache hit each) share the tested core; the fast fake
upstream, which also accepts every OTLP export, runs on another:

* ``off`` and ``off again``: traces off, twice; the second's ratio is the method's own noise;
* ``left out``: traces on, ``OTEL_TRACES_SAMPLER=always_off`` (ids and ``traceparent`` only);
* ``10 %``: ``parentbased_traceidratio`` at 0.1;
* ``no content``: every span, ``PROMPT_MIDDLEWARE_TRACE_CONTENT=false``;
* ``traced``: every span with its messages, the default.

Each round loads the six at once (``_common.measure_together``: req/s over the same seconds,
as a ratio to ``off``), then each alone, reading its process's CPU time (every thread's, the
export thread's too) per request served. The two measure different things: loaded together,
the core is shared out between threads by the scheduler, and a process whose export thread
works in bursts can get a little more of it than its work alone would earn (the README's
"Traces" shows a change that moved this ratio and not the CPU); alone, the CPU per request is
the whole of what a span costs, every thread's included. The README reads both.

    .venv/bin/python bench/traces_load.py                      # 5 rounds of 3 s, managed
    .venv/bin/python bench/traces_load.py --case streaming     # the streamed answer
    .venv/bin/python bench/traces_load.py --smoke              # one short round

Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import sidecar_load
from _common import (
    LoadGenerator,
    add_load_arguments,
    describe,
    loadgen_kind,
    measure,
    measure_together,
    median,
    probe,
    running,
    script_server,
    split_cores,
    table,
)
from sidecar_load import CASES, UPSTREAM_COLLECTOR, write_prompt


@dataclass(frozen=True)
class Setting:
    name: str
    traced: bool
    argv: tuple[str, ...] = ()

    def sidecar_argv(self, prompts: Path) -> list[str]:
        """``sidecar_load.py --serve sidecar``'s arguments for this setting, beyond the port
        and the upstream: the prompt folder and, traced, the collector and the setting's own."""
        argv = ["--prompts-dir", str(prompts)]
        if self.traced:
            argv += ["--traces-endpoint", UPSTREAM_COLLECTOR, *self.argv]
        return argv


SETTINGS: Final = (
    Setting("off", traced=False),
    Setting("off again", traced=False),
    Setting("left out", traced=True, argv=("--traces-sampler", "always_off")),
    Setting("10 %", traced=True, argv=("--traces-sampler", "parentbased_traceidratio:0.1")),
    Setting("no content", traced=True, argv=("--no-trace-content",)),
    Setting("traced", traced=True),
)
BASELINE: Final = SETTINGS[0].name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, duration=3.0)
    parser.set_defaults(rounds=5)
    parser.add_argument("--case", choices=[case.name for case in CASES], default="managed")
    args = parser.parse_args(argv)
    duration, rounds = (1.0, 1) if args.smoke else (args.duration, args.rounds)
    kind = loadgen_kind(parser, args.loadgen)
    cores = split_cores()
    load = {case.name: case.load for case in CASES}[args.case]
    print(describe(kind, cores, args.connections, duration, rounds), flush=True)
    together: list[dict[str, float]] = []
    cpu: dict[str, list[float]] = {setting.name: [] for setting in SETTINGS}
    with tempfile.TemporaryDirectory() as scratch:
        prompts = Path(scratch, "prompts")
        write_prompt(prompts)
        script = sidecar_load.__file__
        servers = [script_server("upstream", script, "upstream", cores.upstream)]
        for setting in SETTINGS:
            extra = setting.sidecar_argv(prompts)
            servers.append(script_server(setting.name, script, "sidecar", cores.tested, extra))
        with running(servers) as started:
            for setting in SETTINGS:
                status, headers, body = probe(started[setting.name].url, load.path, load.body)
                if status != 200 or headers.get("x-prompt-store") != "file":
                    raise RuntimeError(f"{setting.name}: {status} {body[:300]!r}")
            generator = LoadGenerator(kind, cores.loadgen, Path(scratch))
            if not args.smoke:  # warm up: pools filled, code paths hot
                for setting in SETTINGS:
                    generator.run(started[setting.name].url, load, args.connections, 1.0)
            for round_ in range(rounds):
                servers_now = [started[setting.name] for setting in SETTINGS]
                rates = measure_together(generator, servers_now, load, args.connections, duration)
                together.append({s.name: rate for s, rate in zip(SETTINGS, rates, strict=True)})
                # Alone, in an order that turns each round: no setting always runs first.
                turn = round_ % len(SETTINGS)
                for setting in (*SETTINGS[turn:], *SETTINGS[:turn]):
                    result = measure(
                        generator,
                        started[setting.name],
                        load,
                        args.connections,
                        duration,
                        careful=not args.smoke,
                    )
                    cpu[setting.name].append(result.server_cpu / 100 / result.rps * 1e6)
                print(
                    f"  round {round_ + 1}: together "
                    + ", ".join(f"{name} {rate:.0f}" for name, rate in together[-1].items())
                    + " req/s; alone "
                    + ", ".join(f"{name} {values[-1]:.0f}" for name, values in cpu.items())
                    + " µs CPU a request",
                    flush=True,
                )
    print()
    print(_table(args.case, together, cpu))
    return 0


def _table(case: str, together: list[dict[str, float]], cpu: dict[str, list[float]]) -> str:
    base_cpu = median(cpu[BASELINE])
    rows = []
    for setting in SETTINGS:
        ratio = median(r[setting.name] / r[BASELINE] for r in together)
        own = median(cpu[setting.name])
        rows.append(
            (
                setting.name,
                f"{ratio:.2f}",
                f"{own:.0f}",
                f"{own - base_cpu:+.0f}",
                f"{base_cpu / own:.2f}",
            )
        )
    header = (
        f"{case}: setting",
        "req/s loaded together, / off",
        "CPU a request alone (µs)",
        "added (µs)",
        "off / this, CPU",
    )
    return table(header, rows)


if __name__ == "__main__":
    sys.exit(main())
