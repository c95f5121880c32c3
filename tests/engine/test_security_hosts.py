"""No body field changes which host is contacted: the fake Langfuse and Humanloop run on uvicorn
on 127.0.0.1 and a TCP listener stands in for the attacker's host; it must see no connection,
whatever the body says and whether per-request credentials are allowed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from prompt_middleware import PromptMiddleware, Secret, Settings
from tests.conftest import RecordingApp
from tests.engine.fake_servers import (
    ATTACKER_PUBLIC,
    ATTACKER_SECRET,
    HUMANLOOP_KEY,
    ON_THE_SERVERS_LOOP,
    PUBLIC,
    SAFETY_NET_SECONDS,
    SECRET,
    URL,
    Stores,
    Trap,
    basic,
    client_for,
    hostile_fields,
    open_trap,
)


@pytest_asyncio.fixture(loop_scope="module")
async def trap() -> AsyncIterator[Trap]:
    async with open_trap() as listening:
        yield listening


@ON_THE_SERVERS_LOOP
@pytest.mark.parametrize("allow_request_credentials", [False, True], ids=["keys-off", "keys-on"])
async def test_no_body_field_changes_the_host(
    stores: Stores, trap: Trap, allow_request_credentials: bool
) -> None:
    app = RecordingApp()
    settings = Settings(
        langfuse_public_key=PUBLIC,
        langfuse_secret_key=Secret(SECRET),
        langfuse_base_url=stores.langfuse_url,
        humanloop_api_key=Secret(HUMANLOOP_KEY),
        humanloop_base_url=stores.humanloop_url,
        allow_request_credentials=allow_request_credentials,
        cache_ttl_seconds=0,  # every request goes to the store again
    )
    middleware = PromptMiddleware(app, settings)
    hostile = hostile_fields(trap.url)
    attacker_keys = {"langfuse_public_key": ATTACKER_PUBLIC, "langfuse_secret_key": ATTACKER_SECRET}
    honest_keys = {"langfuse_public_key": PUBLIC, "langfuse_secret_key": SECRET}
    variables = {"prompt_variables": {"name": "Ada"}}
    requests: dict[str, dict[str, Any]] = {
        "langfuse": {"model": "langfuse/gpt-4o", "prompt_id": "greeting", **variables},
        "default store": {"model": "gpt-4o", "prompt_id": "greeting", **variables},
        "langfuse, attacker keys": {
            "model": "langfuse/gpt-4o",
            "prompt_id": "greeting",
            **variables,
            **attacker_keys,
        },
        "langfuse, honest keys": {
            "model": "langfuse/gpt-4o",
            "prompt_id": "greeting",
            **variables,
            **honest_keys,
        },
        "langfuse, url as prompt": {"model": "langfuse/x", "prompt_id": trap.url + "/greeting"},
        "langfuse, //host as prompt": {
            "model": "langfuse/x",
            "prompt_id": "//" + trap.url.removeprefix("http://") + "/greeting",
        },
        "langfuse, url as label": {
            "model": "langfuse/x",
            "prompt_id": "greeting",
            "prompt_label": "x@" + trap.url + "#",
        },
        "humanloop": {"model": "humanloop/gpt-4o", "prompt_id": "tagline", **variables},
        "model named as a url": {"model": "langfuse/" + trap.url, "prompt_id": "greeting"},
    }
    statuses: dict[str, int] = {}
    async with client_for(middleware) as client, asyncio.timeout(SAFETY_NET_SECONDS):
        for name, body in requests.items():
            response = await client.post(URL, json={**hostile, **body})
            statuses[name] = response.status_code
            await middleware.engine.cache.drain()
    await middleware.engine.aclose()

    assert trap.connections == []
    attacker_status = 502 if allow_request_credentials else 200  # refused by the real host
    assert statuses == {
        "langfuse": 200,
        "default store": 200,
        "langfuse, attacker keys": attacker_status,
        "langfuse, honest keys": 200,
        "langfuse, url as prompt": 404,
        "langfuse, //host as prompt": 404,
        "langfuse, url as label": 404,
        "humanloop": 200,
        "model named as a url": 200,
    }
    # Every store request went to the configured hosts, with configured (or allowed) keys.
    sent_keys = {request.authorization for request in stores.langfuse.requests}
    expected_keys = {basic(PUBLIC, SECRET)}
    if allow_request_credentials:
        expected_keys.add(basic(ATTACKER_PUBLIC, ATTACKER_SECRET))
    assert sent_keys == expected_keys
    assert stores.langfuse.fetch_count == 8
    assert [request.api_key for request in stores.humanloop.requests] == [HUMANLOOP_KEY]
    for received in app.requests:
        sent = received.json()
        assert not [key for key in sent if key.startswith(("langfuse_", "humanloop_"))]
