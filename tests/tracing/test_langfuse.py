"""Langfuse mode end to end: prompts from the fake Langfuse, and spans back to its OTel endpoint.

The sidecar (real uvicorn) fetches ``support/answer`` from the fake Langfuse, forwards to the
fake upstream, and exports its span with the SDK's OTLP exporter to the same fake's
``/api/public/otel/v1/traces``, which checks Basic auth with the project's keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from prompt_middleware import Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.fakes.langfuse import FakeLangfuse, serving_langfuse
from tests.fakes.otlp import ReceivedSpan
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream
from tests.tracing.conftest import flushed

PUBLIC, SECRET = "pk-lf-traces", "sk-lf-traces-secret"
UPSTREAM_KEY = "sk-upstream-traces-secret"
SIDECAR_KEY = "sidecar-traces-secret"


@pytest.fixture
async def langfuse() -> AsyncIterator[tuple[FakeLangfuse, str]]:
    config = {"model": "gpt-4o", "temperature": 0.3}
    async with serving_langfuse(PUBLIC, SECRET, support_config=config) as (fake, url):
        fake.add_prompt(
            "support/answer",
            [{"role": "system", "content": "v2 for {{product}}."}],
            config={"model": "gpt-4o-mini"},
            labels=["staging"],
        )
        yield fake, url


async def _spans_of_one_request(
    langfuse_url: str, secret_key: str, **request: object
) -> tuple[Sidecar, FakeUpstream]:
    upstream = FakeUpstream()
    async with serve_in_background(upstream) as upstream_url:
        settings = Settings(
            langfuse_public_key=PUBLIC,
            langfuse_secret_key=Secret(secret_key),
            langfuse_base_url=langfuse_url,
            upstream_base_url=upstream_url + "/v1",
            upstream_api_key=Secret(UPSTREAM_KEY),
            api_keys=(Secret(SIDECAR_KEY),),
            traces="langfuse",
        )
        sidecar = Sidecar(settings)
        async with serve_in_background(sidecar, lifespan="on") as url:
            client = openai.AsyncOpenAI(api_key=SIDECAR_KEY, base_url=url + "/v1", max_retries=0)
            try:
                await client.chat.completions.create(
                    model="langfuse/gpt-4o-mini",
                    messages=[{"role": "user", "content": "Hi"}],
                    extra_body={
                        "prompt_id": "support/answer",
                        "prompt_variables": {"product": "Acme"},
                        **request,
                    },
                )
            finally:
                await client.close()
            tracing = sidecar.middleware.tracing
            assert tracing is not None
            await flushed(tracing)
    return sidecar, upstream


async def test_the_generation_is_linked_to_the_langfuse_prompt_version(
    langfuse: tuple[FakeLangfuse, str],
) -> None:
    fake, url = langfuse
    await _spans_of_one_request(url, SECRET)
    await _spans_of_one_request(url, SECRET, prompt_label="staging")
    production, staging = fake.trace_spans
    assert production.attributes["langfuse.observation.prompt.name"] == "support/answer"
    assert production.attributes["langfuse.observation.prompt.version"] == 1
    assert production.attributes["langfuse.observation.metadata.prompt_label"] == "production"
    assert production.attributes["langfuse.observation.metadata.prompt_store"] == "langfuse"
    assert production.attributes["gen_ai.request.model"] == "gpt-4o"
    assert production.attributes["gen_ai.request.temperature"] == 0.3
    assert staging.attributes["langfuse.observation.prompt.version"] == 2
    assert staging.attributes["langfuse.observation.metadata.prompt_label"] == "staging"
    assert staging.name == "chat gpt-4o-mini"


async def test_a_version_asked_for_has_no_label(langfuse: tuple[FakeLangfuse, str]) -> None:
    fake, url = langfuse
    await _spans_of_one_request(url, SECRET, prompt_version=2)
    [span] = fake.trace_spans
    assert span.attributes["langfuse.observation.prompt.version"] == 2
    assert "langfuse.observation.metadata.prompt_label" not in span.attributes


async def test_no_key_or_authorization_in_any_exported_attribute(
    langfuse: tuple[FakeLangfuse, str],
) -> None:
    fake, url = langfuse
    await _spans_of_one_request(url, SECRET, user="someone")
    spans: list[ReceivedSpan] = fake.trace_spans
    assert spans
    authorization = fake.trace_exports[0].headers["authorization"]
    secrets = {PUBLIC, SECRET, UPSTREAM_KEY, SIDECAR_KEY, authorization, authorization.split()[1]}
    for span in spans:
        for name, value in [*span.attributes.items(), *span.resource.items(), ("", span.name)]:
            for secret in secrets:
                assert secret not in f"{name}={value}"
