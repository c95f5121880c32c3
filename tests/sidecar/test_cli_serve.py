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
