"""Which upstream a request goes to: the hand-off's, else the default; none is a 400."""

from __future__ import annotations

import re

import httpx2
import pytest

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.handoff import Upstream
from prompt_middleware.settings import Secret, Settings
from prompt_middleware.sidecar.forwarder import Forwarder
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream
from tests.sidecar.forwarder.helpers import (
    CHAT,
    ENTRY_KEY,
    SETTINGS_KEY,
    error_of,
    forwarding,
    settings_for,
    with_upstream,
)


async def test_upstream_in_scope_beats_settings(fake: FakeUpstream, upstream: str) -> None:
    other = FakeUpstream()
    async with serve_in_background(other) as other_url:
        entry = Upstream(f"{other_url}/v1", Secret(ENTRY_KEY))
        settings = settings_for(upstream, upstream_api_key=Secret(SETTINGS_KEY))
        async with forwarding(settings, wrap=lambda app: with_upstream(app, entry)) as (
            client,
            _,
        ):
            response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    assert fake.requests == []
    assert other.last.path == "/v1/chat/completions"
    assert other.last.header("authorization") == f"Bearer {ENTRY_KEY}"
    assert other.last.header("host") == other_url.removeprefix("http://")


async def test_no_upstream_is_a_400_naming_the_model() -> None:
    forwarder = Forwarder(Settings())
    transport = httpx2.ASGITransport(app=forwarder)
    async with httpx2.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        chat = await client.post("/v1/chat/completions", json={**CHAT, "model": "my-model"})
        models = await client.get("/v1/models")
    assert chat.status_code == 400
    error = error_of(chat)
    assert error["code"] == "invalid_prompt_request"
    assert error["param"] == "model"
    assert "'my-model'" in error["message"]
    assert "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL" in error["message"]
    assert models.status_code == 400
    assert "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL" in error_of(models)["message"]


@pytest.mark.parametrize(
    ("base_url", "shown"),
    [("api.x", "'api.x'"), ("https://user:hunter2@api.x/v1", "'https://api.x/v1'")],
)
def test_invalid_base_url_is_refused_at_start(base_url: str, shown: str) -> None:
    expected = re.escape(f"PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL={shown} is invalid")
    with pytest.raises(ConfigurationError, match=expected) as raised:
        Forwarder(Settings(upstream_base_url=base_url))
    assert "hunter2" not in str(raised.value)


async def test_invalid_api_base_of_an_entry_is_502() -> None:
    entry = Upstream("https://user:hunter2@api.x/v1", Secret(ENTRY_KEY))
    app = with_upstream(Forwarder(Settings()), entry)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    assert error_of(response)["code"] == "upstream_unavailable"
    assert "'https://api.x/v1'" in error_of(response)["message"]
    assert "hunter2" not in response.text
    assert ENTRY_KEY not in response.text
