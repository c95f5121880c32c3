"""``prompt-middleware render``: the rewritten body on stdout and nothing else; logs on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from examples.starlette_app.app import PROMPTS

ROOT = Path(__file__).resolve().parents[2]


def render(body: bytes, **env: str) -> subprocess.CompletedProcess[bytes]:
    environ = {**os.environ, "PROMPT_MIDDLEWARE_PROMPTS_DIR": str(PROMPTS), **env}
    return subprocess.run(
        [sys.executable, "-m", "prompt_middleware", "render"],
        input=body,
        capture_output=True,
        env=environ,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_render_prints_the_rewritten_body_and_nothing_else() -> None:
    done = render(
        b'{"model": "file/m", "prompt_id": "greeting", "temperature": 1e-7,'
        b' "prompt_variables": {"name": "A", "company": "B"}}'
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        b'{"model":"m","temperature":1e-7,"messages":[{"role":"user",'
        b'"content":"Write a one-line greeting for A, who just joined B."}]}\n'
    )


def test_render_passes_unmanaged_bodies_unchanged() -> None:
    done = render(b'{"model": "gpt-4o",  "messages": []}')
    assert (done.returncode, done.stdout) == (0, b'{"model": "gpt-4o",  "messages": []}\n')


def test_render_prints_the_error_json_and_fails() -> None:
    done = render(b'{"model": "file/m", "prompt_id": "nope"}')
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "prompt_not_found"


def test_render_reports_bad_settings_on_stderr() -> None:
    done = render(b"{}", PROMPT_MIDDLEWARE_STRICT_VARIABLES="perhaps")
    assert done.returncode == 2
    assert b"PROMPT_MIDDLEWARE_STRICT_VARIABLES='perhaps' is invalid" in done.stderr
    assert done.stdout == b""


def test_a_warning_while_settings_load_goes_to_stderr(tmp_path: Path) -> None:
    # An unknown section in the config file is logged (config_sections_ignored) while the
    # settings load, before they say where logs go: stdout must still hold the body alone.
    config = tmp_path / "config.yaml"
    config.write_text("router_settings:\n  routing_strategy: simple-shuffle\n")
    done = render(
        b'{"model": "file/m", "prompt_id": "greeting",'
        b' "prompt_variables": {"name": "A", "company": "B"}}',
        PROMPT_MIDDLEWARE_CONFIG=str(config),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "model": "m",
        "messages": [
            {"role": "user", "content": "Write a one-line greeting for A, who just joined B."}
        ],
    }
    assert b"config_sections_ignored" in done.stderr
    assert b"router_settings" in done.stderr
