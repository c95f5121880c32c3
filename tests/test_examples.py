"""The Starlette and FastAPI examples, as a user runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from examples.starlette_app.app import create_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def example() -> Any:
    app = create_app()
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://example"
    ) as client:
        yield client
    await app.engine.aclose()


def echoed(response: httpx2.Response) -> Any:
    assert response.status_code == 200, response.text
    return json.loads(response.json()["choices"][0]["message"]["content"])


async def test_example_text_prompt(example: httpx2.AsyncClient) -> None:
    response = await example.post(
        "/v1/chat/completions",
        json={
            "model": "file/gpt-4o-mini",
            "prompt_id": "greeting",
            "prompt_variables": {"name": "Ada", "company": "Acme"},
        },
    )
    assert echoed(response) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "user", "content": "Write a one-line greeting for Ada, who just joined Acme."}
        ],
    }
    assert response.headers["x-prompt-store"] == "file"


async def test_example_chat_prompt_with_config_and_placeholder(example: httpx2.AsyncClient) -> None:
    question = {"role": "user", "content": "My invoice is wrong."}
    response = await example.post(
        "/v1/chat/completions",
        json={
            "model": "file/gpt-4o-mini",
            "prompt_id": "support/answer",
            "prompt_variables": {"product": "Acme Cloud", "language": "French"},
            "messages": [question],
        },
    )
    assert echoed(response) == {
        "model": "gpt-4o",
        "temperature": 0.2,
        "max_tokens": 300,
        "messages": [
            {
                "role": "system",
                "content": "You are the support assistant of Acme Cloud. "
                "Answer in French, in at most three sentences.",
            },
            question,
        ],
    }
    assert response.headers["x-prompt-version"] == "2"
    staging = await example.post(
        "/v1/chat/completions",
        json={
            "model": "file/x",
            "prompt_id": "support/answer",
            "prompt_label": "staging",
            "prompt_variables": {"product": "Acme"},
            "messages": [],
        },
    )
    assert echoed(staging)["model"] == "gpt-4o-mini"


async def test_example_dotprompt_file_as_litellm_names_it(example: httpx2.AsyncClient) -> None:
    response = await example.post(
        "/v1/chat/completions",
        json={
            "model": "dotprompt/gpt-4",
            "prompt_id": "summarize",
            "prompt_variables": {"text": "Prompts live in files."},
        },
    )
    assert echoed(response) == {
        "model": "gpt-4o-mini",
        "temperature": 0.3,
        "max_tokens": 200,
        "messages": [
            {"role": "system", "content": "You summarise text for busy engineers."},
            {"role": "user", "content": "Summarise in two sentences: Prompts live in files."},
        ],
    }


async def test_example_unmanaged_request_passes_through(example: httpx2.AsyncClient) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    assert echoed(await example.post("/v1/chat/completions", json=body)) == body


async def test_fastapi_example_rewrites_for_its_own_endpoint_and_the_forwarder() -> None:
    from examples.fastapi_app.app import create_app as create_fastapi_app
    from tests.fakes.server import serve_in_background
    from tests.fakes.upstream import FakeUpstream

    upstream = FakeUpstream()
    async with serve_in_background(upstream) as upstream_url:
        app = create_fastapi_app({"PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL": upstream_url + "/v1"})
        transport = httpx2.ASGITransport(app=app)
        # The app's lifespan, as uvicorn runs it: its shutdown closes the forwarder's pool.
        async with (
            app.router.lifespan_context(app),
            httpx2.AsyncClient(transport=transport, base_url="http://fastapi") as client,
        ):
            body = {
                "model": "file/gpt-4o-mini",
                "prompt_id": "greeting",
                "prompt_variables": {"name": "Ada", "company": "Acme"},
            }
            own = await client.post("/v1/chat/completions", json=body)
            proxied = await client.post("/proxy/v1/chat/completions", json=body)
            plain = await client.post(
                "/proxy/v1/chat/completions", json={"model": "gpt-4o", "messages": []}
            )
    expected = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "user", "content": "Write a one-line greeting for Ada, who just joined Acme."}
        ],
    }
    assert echoed(own) == expected
    assert own.headers["x-prompt-name"] == "greeting"
    assert proxied.status_code == 200
    assert proxied.headers["x-prompt-store"] == "file"
    sent = [request.json() for request in upstream.requests]
    assert sent == [expected, {"model": "gpt-4o", "messages": []}]
    assert [request.path for request in upstream.requests] == ["/v1/chat/completions"] * 2
    assert plain.status_code == 200


# --- examples/responses and examples/anthropic, against ./scripts/run's echo sidecar ----------


@pytest.fixture
async def echo_sidecar() -> Any:
    """The sidecar as ``./scripts/run`` starts it: echo mode, the example prompt folder."""
    from examples.starlette_app.app import PROMPTS
    from prompt_middleware import Settings
    from prompt_middleware.sidecar import Sidecar
    from tests.fakes.server import serve_in_background

    sidecar = Sidecar(Settings(prompts_dir=str(PROMPTS), echo=True))
    async with serve_in_background(sidecar, lifespan="on") as url:
        yield url


async def test_example_responses_migration_off_openais_saved_prompts(echo_sidecar: str) -> None:
    from examples.responses.main import main

    # The example's client is synchronous, as a script's would be: it runs beside the server.
    text = await asyncio.to_thread(main, echo_sidecar + "/v1")
    assert json.loads(text) == {
        "model": "gpt-4o-mini",
        "input": [{"role": "user", "content": "My invoice is wrong."}],
        "instructions": "You answer customers of Acme Cloud. Greet Ada by name; at most two "
        "sentences.",
        "temperature": 0.3,
        "max_output_tokens": 200,
    }


async def test_example_anthropic_messages(echo_sidecar: str) -> None:
    from examples.anthropic.main import main

    text = await asyncio.to_thread(main, echo_sidecar)
    assert json.loads(text) == {
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "I was charged twice this month."}],
        "model": "claude-sonnet-4-5",
        "system": "You triage support tickets for Acme Cloud. Answer with one word - billing, "
        "bug or other.",
        "temperature": 0,
        "stop_sequences": ["\n"],
    }
