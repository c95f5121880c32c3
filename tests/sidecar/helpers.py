"""What the sidecar's tests share: echo settings, an SDK client, the command as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

import openai

from examples.starlette_app.app import PROMPTS
from prompt_middleware import Settings

ECHO = Settings(prompts_dir=str(PROMPTS), echo=True)


def sdk(base_url: str, api_key: str = "sk-client") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=api_key, base_url=base_url + "/v1", max_retries=0)


def echoed(content: str | None) -> Any:
    assert content is not None
    return json.loads(content)


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROMPT_MIDDLEWARE_")}
    return subprocess.run(
        [sys.executable, "-m", "prompt_middleware", *args],
        text=True,
        capture_output=True,
        env={**environ, **env},
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
