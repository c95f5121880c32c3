"""The sidecar app: probes, metrics, sidecar keys, echo mode, and the real openai SDK."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from examples.starlette_app.app import PROMPTS
from prompt_middleware import Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.conftest import RecordingApp
from tests.fakes.server import serve_in_background

ECHO = Settings(prompts_dir=str(PROMPTS), echo=True)


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async with serve_in_background(Sidecar(ECHO), lifespan="on") as url:
        yield url


def sdk(base_url: str, api_key: str = "sk-client") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=api_key, base_url=base_url + "/v1", max_retries=0)


def echoed(content: str | None) -> Any:
    assert content is not None
    return json.loads(content)


async def test_openai_sdk_managed_request_through_the_echo_sidecar(echo_url: str) -> None:
    client = sdk(echo_url)
    raw = await client.chat.completions.with_raw_response.create(
        model="file/gpt-4o-mini",
        messages=[{"role": "user", "content": "My invoice is wrong."}],
        extra_body={
            "prompt_id": "support/answer",
            "prompt_variables": {"product": "Acme", "language": "Dutch"},
        },
    )
    completion = raw.parse()
    sent = echoed(completion.choices[0].message.content)
    assert sent["model"] == "gpt-4o"
    assert sent["messages"][1] == {"role": "user", "content": "My invoice is wrong."}
    assert "prompt_id" not in sent
    assert raw.headers["x-prompt-name"] == "support/answer"
    assert raw.headers["x-prompt-version"] == "2"
    await client.close()


async def test_openai_sdk_plain_request_passes_unchanged(echo_url: str) -> None:
    client = sdk(echo_url)
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], temperature=0.5
    )
    assert echoed(completion.choices[0].message.content) == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "gpt-4o",
        "temperature": 0.5,
    }
    await client.close()


async def test_openai_sdk_streamed_managed_request(echo_url: str) -> None:
    client = sdk(echo_url)
    stream = await client.chat.completions.create(
        model="dotprompt/gpt-4",
        messages=[],
        stream=True,
        extra_body={"prompt_id": "summarize", "prompt_variables": {"text": "Short."}},
    )
    pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert len(pieces) > 2  # it came in pieces
    sent = echoed("".join(pieces))
    assert sent["model"] == "gpt-4o-mini"
    assert sent["stream"] is True
    assert sent["messages"][-1]["content"] == "Summarise in two sentences: Short."
    await client.close()


async def test_openai_sdk_sees_our_errors(echo_url: str) -> None:
    client = sdk(echo_url)
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(
            model="file/x", messages=[], extra_body={"prompt_id": "no/such/prompt"}
        )
    assert missing.value.body is not None
    assert missing.value.code == "prompt_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(
            model="file/x",
            messages=[],
            extra_body={"prompt_id": "greeting", "prompt_label": "a", "prompt_version": 1},
        )
    assert bad.value.code == "invalid_prompt_request"
    await client.close()


async def test_health_readiness_and_metrics() -> None:
    app = Sidecar(Settings(prompts_dir=str(PROMPTS), echo=True, prewarm=("greeting",)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        assert (await client.get("/healthz")).status_code == 200
        not_ready = await client.get("/readyz")
        assert (not_ready.status_code, not_ready.json()) == (503, {"ready": False})
    async with (
        serve_in_background(app, lifespan="on") as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert (await client.get("/readyz")).json() == {"ready": True}
        body = {
            "model": "file/m",
            "prompt_id": "greeting",
            "prompt_variables": {"name": "A", "company": "B"},
        }
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        await client.post("/v1/chat/completions", json={**body, "prompt_id": "nope"})
        text = (await client.get("/metrics")).text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    route = "/v1/chat/completions"
    assert samples[("prompt_middleware_requests_total", (("route", route), ("status", "200")))] == 1
    assert samples[("prompt_middleware_requests_total", (("route", route), ("status", "404")))] == 1
    assert samples[("prompt_middleware_prompt_cache_total", (("result", "hit"),))] == 1
    assert (
        samples[
            ("prompt_middleware_store_fetch_seconds_count", (("outcome", "ok"), ("store", "file")))
        ]
        == 1
    )
    assert ("prompt_middleware_overhead_seconds_count", ()) in samples


async def test_sidecar_keys() -> None:
    upstream = RecordingApp()
    app = Sidecar(Settings(api_keys=(Secret("key-one"), Secret("key-two"))), upstream=upstream)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        body = {"model": "gpt-4o", "messages": []}
        for headers in (
            {},
            {"authorization": "Bearer wrong"},
            {"authorization": "key-one"},
            {"authorization": "Bearer "},
        ):
            refused = await client.post("/v1/chat/completions", json=body, headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "invalid_api_key"
            assert "key-one" not in refused.text
        accepted = await client.post(
            "/v1/chat/completions", json=body, headers={"authorization": "Bearer key-two"}
        )
        assert accepted.status_code == 200
        assert "authorization" not in upstream.last.headers  # the sidecar key stays here
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert "key-one" not in metrics
    assert "key-two" not in metrics
    assert len(upstream.requests) == 1


# --- the command --------------------------------------------------------------------------


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


def test_serve_refuses_to_start_without_an_upstream() -> None:
    done = run_cli("serve")
    assert done.returncode == 2
    assert "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL" in done.stderr
    assert "--echo" in done.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
        response = httpx.post(
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
