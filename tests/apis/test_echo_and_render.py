"""``--echo`` answers Responses and Messages in their shapes, streamed and not, parsed by each SDK;
``render --api`` prints the body each API's upstream would get."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import openai
import pytest
from openai.types.responses import ResponsePromptParam

from examples.starlette_app.app import PROMPTS
from prompt_middleware import Settings
from prompt_middleware.sidecar import Sidecar
from tests.fakes.server import serve_in_background

ROOT = Path(__file__).resolve().parents[2]
SAVED_PROMPT: ResponsePromptParam = {
    "id": "pmpt_68b0c1d2e3f4a5b6",
    "variables": {"customer": "Bo", "product": "Acme"},
}


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    sidecar = Sidecar(Settings(prompts_dir=str(PROMPTS), echo=True))
    async with serve_in_background(sidecar, lifespan="on") as url:
        yield url


async def test_echo_streams_a_responses_answer_the_openai_sdk_reads(echo_url: str) -> None:
    async with openai.AsyncOpenAI(api_key="k", base_url=echo_url + "/v1") as client:
        stream = await client.responses.create(
            model="gpt-4o", input="Hi", prompt=SAVED_PROMPT, stream=True
        )
        events = [event async for event in stream]
    assert events[0].type == "response.created"
    completed = events[-1]
    assert completed.type == "response.completed"
    sent = json.loads(completed.response.output_text)
    assert (
        sent["instructions"]
        == "You answer customers of Acme. Greet Bo by name; at most two sentences."
    )
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == completed.response.output_text


async def test_echo_streams_a_messages_answer_the_anthropic_sdk_reads(echo_url: str) -> None:
    client = anthropic.AsyncAnthropic(api_key="k", base_url=echo_url)
    async with client.messages.stream(
        model="claude",
        max_tokens=5,
        messages=[{"role": "user", "content": "Hi"}],
        extra_body={"prompt_id": "claude/triage", "prompt_variables": {"product": "Acme"}},
    ) as stream:
        text = await stream.get_final_text()
    await client.close()
    sent = json.loads(text)
    assert sent["system"].startswith("You triage support tickets for Acme.")
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert sent["stream"] is True


def _render(api: str, body: object) -> subprocess.CompletedProcess[bytes]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROMPT_MIDDLEWARE_")}
    return subprocess.run(
        [sys.executable, "-m", "prompt_middleware", "render", "--api", api],
        input=json.dumps(body).encode(),
        capture_output=True,
        env={**environ, "PROMPT_MIDDLEWARE_PROMPTS_DIR": str(PROMPTS)},
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_render_api_responses_and_messages_print_each_apis_body() -> None:
    done = _render("responses", {"model": "m", "prompt": SAVED_PROMPT, "input": "Hi"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "model": "gpt-4o-mini",
        "input": [{"role": "user", "content": "Hi"}],
        "instructions": "You answer customers of Acme. Greet Bo by name; at most two sentences.",
        "temperature": 0.3,
        "max_output_tokens": 200,
    }
    body = {"model": "m", "prompt_id": "claude/triage", "prompt_variables": {"product": "A"}}
    done = _render("messages", {**body, "messages": []})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stop_sequences"] == ["\n"]


def test_render_api_messages_prints_anthropics_error_shape() -> None:
    done = _render("messages", {"model": "m", "prompt_id": "nope"})
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["type"] == "error"
    assert error["error"]["type"] == "not_found_error"
