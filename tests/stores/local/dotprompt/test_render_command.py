"""``prompt-middleware render`` over LiteLLM's folder: how the issue was found, as a new user
would try it (the body on stdin, the rewritten body on stdout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.stores.local.dotprompt.conftest import PROMPTS

ROOT = Path(__file__).resolve().parents[4]


def render(request: dict[str, Any]) -> Any:
    environ = {**os.environ, "PROMPT_MIDDLEWARE_PROMPTS_DIR": str(PROMPTS)}
    done = subprocess.run(
        [sys.executable, "-m", "prompt_middleware", "render"],
        input=json.dumps(request).encode(),
        capture_output=True,
        env=environ,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_render_fills_jinja_and_reaches_a_versioned_file() -> None:
    variables = {"user_message": "Hi", "system_context": "Be brief."}
    rendered = render(
        {"model": "dotprompt/x", "prompt_id": "chat_prompt", "prompt_variables": variables}
    )
    assert rendered["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    versioned = render(
        {"model": "dotprompt/x", "prompt_id": "chat_prompt", "prompt_version": 1}
        | {"prompt_variables": {"user_message": "Hi"}}
    )
    assert versioned == {
        "model": "gpt-3.5-turbo",
        "messages": [{"role": "user", "content": "Version 1: Hi"}],
        "temperature": 0.5,
    }
