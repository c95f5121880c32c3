"""prompt-middleware serve, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2

from examples.starlette_app.app import PROMPTS
from tests.sidecar.helpers import free_port, run_cli


def test_serve_refuses_to_start_without_an_upstream() -> None:
    done = run_cli("serve")
    assert done.returncode == 2
    assert "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL" in done.stderr
    assert "--echo" in done.stderr


def test_serve_echo_answers_as_the_readme_says(tmp_path: Path) -> None:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROMPT_MIDDLEWARE_")}
    environ["PROMPT_MIDDLEWARE_PROMPTS_DIR"] = str(PROMPTS)
    server = subprocess.Popen(
        [sys.executable, "-m", "prompt_middleware", "serve", "--echo", "--port", str(port)],
        env=environ,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:  # synchronise on uvicorn saying it is up, not on time
            if "Application startup complete" in line:
                break
        response = httpx2.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={
                "model": "file/gpt-4o-mini",
                "prompt_id": "greeting",
                "prompt_variables": {"name": "Ada", "company": "Acme"},
            },
            timeout=10,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert response.status_code == 200
    sent = json.loads(response.json()["choices"][0]["message"]["content"])
    assert (
        sent["messages"][0]["content"] == "Write a one-line greeting for Ada, who just joined Acme."
    )


_GARBAGE_PROBE = """
import gc
from prompt_middleware import PromptMiddleware, Settings
from prompt_middleware.sidecar.app import Sidecar, create_app_from_env

async def app(scope, receive, send): ...

PromptMiddleware(app, Settings.from_env())
Sidecar(Settings.from_env())
print(gc.get_threshold()[0], gc.get_freeze_count() > 0)
create_app_from_env()
print(gc.get_threshold()[0], gc.get_freeze_count() > 0)
"""


def test_only_the_served_process_sets_its_garbage_collector_for_a_server() -> None:
    # A host application's collector is its own; the process `serve` runs is ours (README,
    # "Performance"): start-up's objects frozen, the youngest generation collected less often.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROMPT_MIDDLEWARE_")}
    environ["PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL"] = "http://127.0.0.1:9/v1"  # never called
    done = subprocess.run(
        [sys.executable, "-c", _GARBAGE_PROBE],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["700 False", "20000 True"]
