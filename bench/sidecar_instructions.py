"""Instructions a real sidecar executes per request, traces off and on: counted, not timed.

Each setting runs ``prompt-middleware serve`` (as ``bench/sidecar_load.py`` runs it) under
valgrind's callgrind, its instrumentation off through start-up; a client on one connection sends
``--warm`` managed requests, then callgrind counts the instructions of the next ``--requests``
(fewer than a batch of spans: what is counted is each request's own part, the export thread's
encoding is ``bench/hot_path.py``'s). Unlike a load test's req/s, the count does not move with
the machine: it tells what a change costs the whole server, uvicorn's and aiohttp's parts
included, and how that compares with what the same server does for a request without traces.

    bench/setup.sh                                        # once: Debian's valgrind (and wrk)
    .venv/bin/python bench/sidecar_instructions.py        # 300 requests each
    .venv/bin/python bench/sidecar_instructions.py --smoke

Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

import sidecar_load
import traces_load
from _common import _wait_listening, free_port, running, script_server, table
from sidecar_load import CASES, write_prompt

#: ``bench/traces_load.py``'s settings but the second "off" and the sampled one in ten (whose
#: count would depend on which requests its random ids pick).
SETTINGS: Final = tuple(s for s in traces_load.SETTINGS if s.name not in ("off again", "10 %"))
#: Start-up under valgrind is slow (interpretation without instrumentation is still ~5x).
START_SECONDS: Final = 300.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few requests, two settings")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warm", type=int, default=50)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed: run bench/setup.sh")
    requests, warm = (20, 5) if args.smoke else (args.requests, args.warm)
    settings = SETTINGS[::3] if args.smoke else SETTINGS
    load = CASES[0].load
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as scratch:
        prompts = Path(scratch, "prompts")
        write_prompt(prompts)
        script = sidecar_load.__file__
        upstream_server = script_server(
            "upstream", script, "upstream", frozenset(os.sched_getaffinity(0))
        )
        with running([upstream_server]) as started:
            upstream = started["upstream"].url
            for setting in settings:
                argv_ = ["--upstream", f"{upstream}/v1", *setting.sidecar_argv(prompts)]
                name = setting.name
                counts[name] = _count(script, argv_, load.path, load.body, warm, requests, scratch)
                print(f"  {name}: {counts[name]:,} instructions a request", flush=True)
    base = counts["off"]
    rows = [
        (name, f"{count:,}", f"{count - base:+,}", f"{base / count:.2f}")
        for name, count in counts.items()
    ]
    print()
    print(
        table(
            ("managed request, one connection", "instructions", "added", "off / this"),
            rows,
        )
    )
    return 0


def _count(
    script: str, argv: list[str], path: str, body: bytes, warm: int, requests: int, scratch: str
) -> int:
    """The instructions per request of one sidecar, counted by callgrind."""
    port = free_port()
    output = Path(scratch, f"callgrind-{port}.out")
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    command += [f"--callgrind-out-file={output}", sys.executable, script, "--serve", "sidecar"]
    command += ["--port", str(port), *argv]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dictionaries every run
    process = subprocess.Popen(command, env=environment, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process, START_SECONDS)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(warm):
            _post(connection, path, body)
        _control(process.pid, "--instr=on")
        for _ in range(requests):
            _post(connection, path, body)
        _control(process.pid, "--instr=off")
        _control(process.pid, "--dump")
    finally:
        process.terminate()
        process.wait(60)
    total = 0
    for part in Path(scratch).glob(f"callgrind-{port}.out*"):
        for line in part.read_text().splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total // requests


def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> None:
    connection.request("POST", path, body=body, headers={"content-type": "application/json"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"the sidecar answered {response.status}")


def _control(pid: int, option: str) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
