"""The benchmark suite, run in its smoke mode so that it never rots.

Benchmarks are not tests: timings are never checked (a slow CI machine must not fail), only
that each script runs to the end and prints its table; without wrk the scripts fall back to
the Python load generator, which this exercises on machines that lack wrk. The stampede's
single store fetch is a correctness property, so that one is checked.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[1]


def run_smoke(script: str, *arguments: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--smoke", *arguments],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@pytest.mark.parametrize(
    ("script", "header"),
    [
        ("hot_path.py", "µs/req"),
        ("wrapped_load.py", "| case (2 KB body) | unwrapped req/s | wrapped req/s |"),
        ("sidecar_load.py", "| case | server | req/s (32 conn.) |"),
        ("live_updates.py", "| time to everywhere, p99 |"),
    ],
)
def test_a_benchmark_runs_and_prints_its_table(script: str, header: str) -> None:
    assert header in run_smoke(script)


@pytest.mark.parametrize("app", ["parse", "fastapi"])
def test_the_wrapped_app_can_parse_its_request(app: str) -> None:
    output = run_smoke("wrapped_load.py", "--app", app)
    assert f"wrapped app: {app}" in output
    assert "| case (2 KB body) | unwrapped req/s | wrapped req/s |" in output


def test_the_sidecar_load_runs_with_traces_on_and_a_hanging_collector() -> None:
    output = run_smoke("sidecar_load.py", "--hanging-collector")
    assert "| traces on / off, req/s, loaded together |" in output
    assert re.search(r"^traces: [\d.]+ spans dropped", output, re.MULTILINE), output


def test_the_traces_settings_are_loaded_side_by_side() -> None:
    output = run_smoke("traces_load.py")
    assert "| managed: setting | req/s loaded together, / off |" in output
    for setting in ("off again", "left out", "10 %", "no content", "traced"):
        assert f"| {setting} |" in output


def test_the_sidecars_instructions_are_counted_with_traces_off_and_on() -> None:
    # valgrind is installed by scripts/install-test-servers, as the tests' servers are.
    output = run_smoke("sidecar_instructions.py")
    rows = dict(re.findall(r"^\| (off|traced) \| ([\d,]+) \|", output, re.MULTILINE))
    assert set(rows) == {"off", "traced"}, output
    # A count, not a timing: a traced request always executes more than an untraced one.
    assert int(rows["traced"].replace(",", "")) > int(rows["off"].replace(",", "")) > 0


def test_the_stampede_fetches_the_prompt_once() -> None:
    output = run_smoke("stampede.py")
    found = re.search(r"^\| store fetches \(per round\) \| ([\d, ]+) \|", output, re.MULTILINE)
    assert found is not None, output
    assert [int(n) for n in found.group(1).split(",")] == [1]


async def test_the_python_load_generator_reads_plain_and_streamed_answers(tmp_path: Path) -> None:
    # The fallback when wrk is missing, checked even where wrk is installed: the fake upstream
    # answers a Content-Length body, or a chunked SSE stream for "stream": true. The upstream
    # is served in this process, so its start-up is awaited, not polled.
    async with serve_in_background(FakeUpstream()) as base:
        body_file = tmp_path / "body.json"
        for body in (b'{"model":"m"}', b'{"model":"m","stream":true}'):
            body_file.write_bytes(body)
            loadgen = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "bench" / "loadgen.py"),
                f"{base}/v1/chat/completions",
                str(body_file),
                "--connections",
                "2",
                "--duration",
                "0.3",
                stdout=asyncio.subprocess.PIPE,
            )
            stdout, _ = await asyncio.wait_for(loadgen.communicate(), timeout=30)
            assert loadgen.returncode == 0
            result = json.loads(stdout)
            assert result["rps"] > 0
            assert result["errors"] == 0
            assert 0 < result["p50_ms"] <= result["p99_ms"]
