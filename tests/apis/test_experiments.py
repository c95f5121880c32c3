"""A sticky experiment splits Responses traffic on ``user`` (else ``safety_identifier``) and
Messages traffic on ``metadata.user_id`` — the same users get the same variants as on chat
completions (``examples/experiments``: alice gets ``production``, ada ``candidate``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from prompt_middleware.sidecar import Sidecar
from tests.experiments.test_doors import example_settings
from tests.fakes import api_answers
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream

PROMPT = {"prompt_id": "support/answer", "prompt_variables": {"product": "Acme Cloud"}}


async def _variants(path: str, bodies: list[dict[str, Any]]) -> list[str | None]:
    sidecar = Sidecar(example_settings(echo=True))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sidecar), base_url="http://sidecar"
    ) as client:
        responses = [await client.post(path, json=body) for body in bodies]
    await sidecar.middleware.engine.aclose()
    for response in responses:
        assert response.status_code == 200, response.text
    return [response.headers.get("x-prompt-variant") for response in responses]


@pytest.mark.parametrize("field", ["user", "safety_identifier"])
async def test_responses_split_on_user_else_safety_identifier(field: str) -> None:
    bodies = [{"model": "m", "input": "Hi", field: user, **PROMPT} for user in ("alice", "ada")]
    bodies += [{"model": "m", "input": "Hi", field: "ada", **PROMPT}]
    assert await _variants("/v1/responses", bodies) == ["production", "candidate", "candidate"]


async def test_responses_user_comes_before_safety_identifier() -> None:
    body = {"model": "m", "input": "Hi", "user": "alice", "safety_identifier": "ada", **PROMPT}
    assert await _variants("/v1/responses", [body]) == ["production"]


async def test_messages_split_on_metadata_user_id() -> None:
    bodies = [
        {"model": "m", "max_tokens": 5, "messages": [], "metadata": {"user_id": user}, **PROMPT}
        for user in ("alice", "ada", "ada")
    ]
    # A top-level "user" is not Anthropic's: it does not choose the variant.
    bodies.append(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [],
            "user": "ada",
            "metadata": {"user_id": "alice"},
            **PROMPT,
        }
    )
    assert await _variants("/v1/messages", bodies) == [
        "production",
        "candidate",
        "candidate",
        "production",
    ]


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/messages"])
async def test_per_variant_tokens_are_read_from_each_apis_stream(path: str) -> None:
    upstream = FakeUpstream()
    async with serve_in_background(upstream) as upstream_url:
        sidecar = Sidecar(example_settings(upstream_base_url=upstream_url + "/v1"))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sidecar), base_url="http://sidecar"
        ) as client:
            if path == "/v1/responses":
                body: dict[str, Any] = {"model": "m", "input": "Hi", "user": "ada"}
            else:
                body = {
                    "model": "m",
                    "max_tokens": 5,
                    "messages": [],
                    "metadata": {"user_id": "ada"},
                }
            response = await client.post(path, json={**body, **PROMPT, "stream": True})
            assert response.status_code == 200
            metrics = (await client.get("/metrics")).text
        await sidecar.middleware.engine.aclose()
    sent = upstream.last.body
    tokens = api_answers.usage_counts(sent, sent.decode())
    for kind, count in zip(("input", "output"), tokens, strict=True):
        assert (
            'prompt_middleware_variant_tokens_total{experiment="support-tone",'
            f'kind="{kind}",variant="candidate"}} {float(count)}'
        ) in metrics
