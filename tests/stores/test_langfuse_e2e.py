"""Langfuse end to end: real uvicorn servers on 127.0.0.1 for the middleware and the fake.

Every assertion is on what crossed the wire: the bytes the wrapped app received, the
response the client got, and the requests the fake Langfuse counted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
import structlog

from prompt_middleware import PromptMiddleware, Secret, Settings
from tests.conftest import RecordingApp
from tests.fakes.langfuse import FakeLangfuse, serving_langfuse
from tests.fakes.server import serve_in_background

URL = "/v1/chat/completions"
PUBLIC, SECRET = "pk-lf-e2e", "sk-lf-e2e-secret"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeLangfuse, str]]:
    config = {"model": "gpt-4o", "temperature": 0.2, "json_schema": {"not": "a param"}}
    async with serving_langfuse(PUBLIC, SECRET, support_config=config) as (langfuse, base_url):
        langfuse.add_prompt("greeting", "Hello {{name}}!", labels=["production"])
        langfuse.add_prompt("greeting", "Hi {{name}} (v2)", labels=["staging"])
        langfuse.add_prompt("beta-only", "Beta {{x}}", labels=["beta"])
        yield langfuse, base_url


Served = tuple[httpx2.AsyncClient, RecordingApp, PromptMiddleware]
Serve = Callable[..., AbstractAsyncContextManager[Served]]


@pytest.fixture
def serve(fake: tuple[FakeLangfuse, str]) -> Serve:
    """``async with serve(**settings) as (client, app, middleware)``: the middleware on uvicorn."""
    _, langfuse_url = fake

    @asynccontextmanager
    async def run(settings: Settings | None = None, **overrides: Any) -> AsyncIterator[Served]:
        app = RecordingApp()
        settings = settings or Settings(
            langfuse_public_key=PUBLIC,
            langfuse_secret_key=Secret(SECRET),
            langfuse_base_url=langfuse_url,
            **overrides,
        )
        middleware = PromptMiddleware(app, settings)
        async with (
            serve_in_background(middleware, lifespan="on") as url,
            httpx2.AsyncClient(base_url=url, limits=httpx2.Limits(max_connections=250)) as client,
        ):
            yield client, app, middleware

    return run


def managed(**fields: Any) -> dict[str, Any]:
    """A request written as LiteLLM's prompt-management docs write it."""
    return {
        "model": "langfuse/gpt-4o-mini",
        "prompt_id": "greeting",
        "prompt_variables": {"name": "Ada"},
        **fields,
    }


async def test_a_litellm_style_request_is_served_from_langfuse(
    serve: Serve, fake: tuple[FakeLangfuse, str]
) -> None:
    langfuse, _ = fake
    async with serve() as (client, app, _):
        response = await client.post(
            URL,
            json={
                "model": "langfuse/gpt-4o-mini",
                "prompt_id": "support/answer",
                "prompt_variables": {"product": "Acme"},
                "messages": [{"role": "user", "content": "Where is my parcel?"}],
                "user": "caf\u00e9",
            },
        )
    assert response.status_code == 200
    assert app.last.json() == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You support Acme."},
            {"role": "user", "content": "Where is my parcel?"},
        ],
        "user": "caf\u00e9",
        "temperature": 0.2,
    }
    assert response.headers["x-prompt-store"] == "langfuse"
    assert response.headers["x-prompt-version"] == "1"
    (request,) = langfuse.requests
    assert request.raw_path == b"/api/public/v2/prompts/support%2Fanswer"
    assert request.query_string == b"label=production"


async def test_a_litellm_proxy_config_entry_works(
    serve: Serve, fake: tuple[FakeLangfuse, str], tmp_path: Path
) -> None:
    _, langfuse_url = fake
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: support-bot\n"
        "    litellm_params:\n"
        "      model: langfuse/gpt-4o-mini\n"
        "      prompt_id: greeting\n"
        "      prompt_label: staging\n"
        "      temperature: 0.5\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
    )
    settings = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_CONFIG": str(config),
            "LANGFUSE_PUBLIC_KEY": PUBLIC,
            "LANGFUSE_SECRET_KEY": SECRET,
            "LANGFUSE_HOST": langfuse_url,
        }
    )
    async with serve(settings) as (client, app, _):
        response = await client.post(
            URL, json={"model": "support-bot", "prompt_variables": {"name": "Bo"}}
        )
    assert response.status_code == 200
    assert app.last.json() == {
        "model": "gpt-4o-mini",
        "temperature": 0.5,
        "messages": [{"role": "user", "content": "Hi Bo (v2)"}],
    }


async def test_version_label_and_non_production_labels(
    serve: Serve, fake: tuple[FakeLangfuse, str]
) -> None:
    langfuse, _ = fake
    async with serve() as (client, app, _):
        await client.post(URL, json=managed(prompt_version=2))
        assert app.last.json()["messages"][0]["content"] == "Hi Ada (v2)"
        await client.post(URL, json=managed(prompt_id="beta-only", prompt_label="beta"))
        assert app.last.json()["messages"][0]["content"] == "Beta {{x}}"
        missing = await client.post(URL, json=managed(prompt_id="beta-only"))
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "prompt_not_found"
    assert "'beta-only'" in error["message"]
    assert "production" in error["message"]
    assert langfuse.fetches("greeting", version=2) == 1


async def test_a_thousand_requests_inside_the_ttl_make_one_fetch(
    serve: Serve, fake: tuple[FakeLangfuse, str]
) -> None:
    langfuse, _ = fake
    async with serve() as (client, _, _):
        statuses = [(await client.post(URL, json=managed())).status_code for _ in range(1000)]
    assert statuses == [200] * 1000
    assert langfuse.fetch_count == 1


async def test_two_hundred_concurrent_cold_requests_make_one_fetch(
    serve: Serve, fake: tuple[FakeLangfuse, str]
) -> None:
    langfuse, _ = fake
    async with serve() as (client, app, _):
        langfuse.hold()
        requests = [asyncio.create_task(client.post(URL, json=managed())) for _ in range(200)]
        await langfuse.wait_for_held(1)
        langfuse.release()
        responses = await asyncio.gather(*requests)
    assert [r.status_code for r in responses] == [200] * 200
    assert langfuse.fetch_count == 1
    assert len(app.requests) == 200


async def test_langfuse_outage_after_warm_up_loses_no_request(
    serve: Serve, fake: tuple[FakeLangfuse, str]
) -> None:
    langfuse, _ = fake
    # TTL 0: every request after the first finds its entry expired and refreshes it.
    async with serve(cache_ttl_seconds=0) as (client, app, middleware):
        assert (await client.post(URL, json=managed())).headers["x-prompt-cache"] == "miss"
        langfuse.fail_with = 500
        responses = []
        for _ in range(20):
            responses.append(await client.post(URL, json=managed()))
            await middleware.engine.cache.drain()
        assert langfuse.fetch_count > 1  # the refreshes did reach the failing store
        langfuse.fail_with = None
        for _ in range(2):
            await client.post(URL, json=managed())
            await middleware.engine.cache.drain()
    assert [r.status_code for r in responses] == [200] * 20
    assert {r.headers["x-prompt-cache"] for r in responses} == {"stale"}
    assert app.last.json()["messages"] == [{"role": "user", "content": "Hello Ada!"}]


async def test_a_404_on_refresh_evicts(serve: Serve, fake: tuple[FakeLangfuse, str]) -> None:
    langfuse, _ = fake
    async with serve(cache_ttl_seconds=0) as (client, _, middleware):
        assert (await client.post(URL, json=managed())).status_code == 200
        langfuse.delete_prompt("greeting")
        stale = await client.post(URL, json=managed())
        await middleware.engine.cache.drain()
        gone = await client.post(URL, json=managed())
    assert (stale.status_code, stale.headers["x-prompt-cache"]) == (200, "stale")
    assert gone.status_code == 404


async def test_prewarm_fetches_before_the_first_request(
    serve: Serve, fake: tuple[FakeLangfuse, str]
) -> None:
    langfuse, _ = fake
    async with serve(prewarm=("support/answer", "greeting@staging")) as (client, _, _):
        assert langfuse.fetch_count == 2
        response = await client.post(URL, json=managed(prompt_label="staging"))
    assert response.headers["x-prompt-cache"] == "hit"
    assert langfuse.fetch_count == 2


async def test_refused_credentials_are_a_502_that_shows_no_key(
    serve: Serve, fake: tuple[FakeLangfuse, str]
) -> None:
    _, langfuse_url = fake
    settings = Settings(
        langfuse_public_key="pk-lf-wrong",
        langfuse_secret_key=Secret("sk-lf-wrong-secret"),
        langfuse_base_url=langfuse_url,
    )
    async with serve(settings) as (client, app, _):
        with structlog.testing.capture_logs() as logs:
            response = await client.post(URL, json=managed())
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "prompt_store_unavailable"
    assert "credentials" in error["message"]
    everything = response.text + json.dumps(logs, default=str)
    assert "sk-lf-wrong-secret" not in everything
    assert "pk-lf-wrong" not in everything
    assert app.requests == []


async def listener() -> tuple[asyncio.Server, list[int]]:
    """A TCP listener on 127.0.0.1 that counts the connections it is offered."""
    connections: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    return server, connections


async def test_no_body_field_can_redirect_langfuse_traffic(
    serve: Serve, fake: tuple[FakeLangfuse, str]
) -> None:
    langfuse, _ = fake
    trap, connections = await listener()
    trap_url = f"http://127.0.0.1:{trap.sockets[0].getsockname()[1]}"
    hostile = managed(
        langfuse_host=trap_url,
        langfuse_base_url=trap_url,
        langfuse_public_key="pk-attacker",
        langfuse_secret_key="sk-attacker",
        api_base=trap_url,
        base_url=trap_url,
    )
    async with trap, serve(allow_request_credentials=True) as (client, app, _):
        refused = await client.post(URL, json=hostile)
        honest = await client.post(
            URL, json={**hostile, "langfuse_public_key": PUBLIC, "langfuse_secret_key": SECRET}
        )
    assert connections == []
    assert langfuse.fetch_count == 2  # both key sets went to the configured host, and only there
    assert refused.status_code == 502  # the attacker's keys, sent to the configured host only
    assert honest.status_code == 200
    sent = app.last.json()
    assert not [key for key in sent if key.startswith("langfuse_")]
    assert sent["api_base"] == trap_url  # an unknown field is the upstream's business


async def test_request_credentials_are_dropped_unless_allowed(
    serve: Serve, fake: tuple[FakeLangfuse, str]
) -> None:
    async with serve() as (client, app, _):
        with structlog.testing.capture_logs() as logs:
            response = await client.post(
                URL, json=managed(langfuse_public_key="pk-x", langfuse_secret_key="sk-x")
            )
    assert response.status_code == 200  # served with the configured keys
    assert "langfuse_public_key" not in app.last.json()
    assert any(log["event"] == "request_credentials_ignored" for log in logs)
    assert "sk-x" not in json.dumps(logs, default=str)


async def test_the_cache_is_keyed_by_credential_set(
    serve: Serve, fake: tuple[FakeLangfuse, str]
) -> None:
    langfuse, _ = fake
    async with serve(allow_request_credentials=True) as (client, _, _):
        tenant = managed(langfuse_public_key=PUBLIC, langfuse_secret_key=SECRET)
        intruder = managed(langfuse_public_key=PUBLIC, langfuse_secret_key="sk-guess")
        assert (await client.post(URL, json=tenant)).status_code == 200
        assert (await client.post(URL, json=tenant)).headers["x-prompt-cache"] == "hit"
        response = await client.post(URL, json=intruder)
    assert response.status_code == 502  # not the tenant's cached prompt
    assert langfuse.fetch_count == 2


async def test_a_model_list_entry_brings_its_own_langfuse_credentials(
    serve: Serve, fake: tuple[FakeLangfuse, str], tmp_path: Path
) -> None:
    langfuse, langfuse_url = fake
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: team-a\n"
        "    litellm_params:\n"
        "      model: langfuse/gpt-4o-mini\n"
        "      prompt_id: greeting\n"
        "      langfuse_public_key: os.environ/TEAM_A_PUBLIC\n"
        "      langfuse_secret: os.environ/TEAM_A_SECRET\n"
        f"      langfuse_host: {langfuse_url}\n"
    )
    settings = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_CONFIG": str(config),
            "LANGFUSE_PUBLIC_KEY": "pk-lf-other-project",
            "LANGFUSE_SECRET_KEY": "sk-lf-other-project",
            "LANGFUSE_HOST": "http://127.0.0.1:9",  # never contacted for team-a
            "TEAM_A_PUBLIC": PUBLIC,
            "TEAM_A_SECRET": SECRET,
        }
    )
    async with serve(settings) as (client, app, _):
        response = await client.post(
            URL, json={"model": "team-a", "prompt_variables": {"name": "Cy"}}
        )
    assert response.status_code == 200
    assert app.last.json()["messages"] == [{"role": "user", "content": "Hello Cy!"}]
    assert langfuse.fetch_count == 1
