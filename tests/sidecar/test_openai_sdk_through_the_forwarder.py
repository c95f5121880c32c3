"""The sidecar with its forwarder, driven by the official openai SDK, against a fake upstream.

Both servers are real uvicorn servers on 127.0.0.1: what is asserted is what crossed the wire.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import openai
import pytest

from examples.starlette_app.app import PROMPTS
from prompt_middleware import Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import CannedResponse, FakeUpstream

UPSTREAM_KEY = "sk-upstream-secret"


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    async with serve_in_background(fake) as url:
        yield fake, url


@pytest.fixture
async def sidecar(upstream: tuple[FakeUpstream, str]) -> AsyncIterator[openai.AsyncOpenAI]:
    _, upstream_url = upstream
    settings = Settings(
        prompts_dir=str(PROMPTS),
        upstream_base_url=upstream_url + "/v1",
        upstream_api_key=Secret(UPSTREAM_KEY),
        api_keys=(Secret("sidecar-key"),),
    )
    async with serve_in_background(Sidecar(settings), lifespan="on") as url:
        client = openai.AsyncOpenAI(api_key="sidecar-key", base_url=url + "/v1", max_retries=0)
        yield client
        await client.close()


async def test_plain_request_reaches_the_upstream_unchanged(
    sidecar: openai.AsyncOpenAI, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, _ = upstream
    completion = await sidecar.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], seed=7
    )
    assert json.loads(completion.choices[0].message.content or "") == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "gpt-4o",
        "seed": 7,
    }
    assert fake.last.path == "/v1/chat/completions"
    assert fake.last.header("authorization") == f"Bearer {UPSTREAM_KEY}"


async def test_managed_request_reaches_the_upstream_rewritten(
    sidecar: openai.AsyncOpenAI, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, _ = upstream
    raw = await sidecar.chat.completions.with_raw_response.create(
        model="file/gpt-4o-mini",
        messages=[{"role": "user", "content": "Refund?"}],
        extra_body={
            "prompt_id": "support/answer",
            "prompt_variables": {"product": "Acme", "language": "German"},
        },
    )
    assert raw.headers["x-prompt-name"] == "support/answer"
    assert fake.last.json() == {
        "model": "gpt-4o",
        "messages": [
            {
                "role": "system",
                "content": "You are the support assistant of Acme. Answer in German, in at "
                "most three sentences.",
            },
            {"role": "user", "content": "Refund?"},
        ],
        "temperature": 0.2,
        "max_tokens": 300,
    }


async def test_streamed_managed_request_arrives_chunk_by_chunk(
    sidecar: openai.AsyncOpenAI, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, _ = upstream
    fake.gate = asyncio.Event()
    stream = await sidecar.chat.completions.create(
        model="file/x",
        messages=[],
        stream=True,
        extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "A", "company": "B"}},
    )
    chunks = stream.__aiter__()
    first = await asyncio.wait_for(chunks.__anext__(), timeout=10)  # a safety net only
    # The upstream is still holding the rest: the first chunk came through unbuffered.
    assert fake.completed == 0
    assert first.choices[0].delta.role == "assistant"
    fake.gate.set()
    rest = [chunk async for chunk in chunks]
    content = "".join(c.choices[0].delta.content or "" for c in rest if c.choices)
    assert json.loads(content)["messages"][0]["content"].startswith("Write a one-line greeting")
    assert fake.completed == 1


async def test_error_cases_through_the_sdk(
    sidecar: openai.AsyncOpenAI, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, _ = upstream
    with pytest.raises(openai.NotFoundError) as missing:
        await sidecar.chat.completions.create(
            model="file/x", messages=[], extra_body={"prompt_id": "absent"}
        )
    assert missing.value.code == "prompt_not_found"
    fake.response = CannedResponse(
        429,
        b'{"error": {"message": "slow down", "type": "rate_limit", "param": null, "code": null}}',
        [(b"content-type", b"application/json")],
    )
    with pytest.raises(openai.RateLimitError) as limited:
        await sidecar.chat.completions.create(model="gpt-4o", messages=[])
    assert limited.value.message.endswith("slow down")  # the upstream's error, as it sent it
    bad_key = openai.AsyncOpenAI(api_key="wrong", base_url=str(sidecar.base_url), max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        await bad_key.chat.completions.create(model="gpt-4o", messages=[])
    assert refused.value.code == "invalid_api_key"
    await bad_key.close()
    assert len(fake.requests) == 1  # only the rate-limited request reached the upstream
