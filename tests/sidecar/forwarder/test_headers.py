"""Which headers cross the forwarder, and whose Authorization the upstream gets."""

from __future__ import annotations

import pytest

from prompt_middleware.handoff import Upstream
from prompt_middleware.settings import Secret
from tests.fakes.upstream import FakeUpstream
from tests.sidecar.forwarder.helpers import (
    CHAT,
    CLIENT_AUTH,
    ENTRY_KEY,
    SETTINGS_KEY,
    forwarding,
    settings_for,
    with_upstream,
)


async def test_hop_by_hop_request_headers_are_dropped(fake: FakeUpstream, upstream: str) -> None:
    headers = {
        "connection": "keep-alive, X-Private",
        "x-private": "for this hop",
        "keep-alive": "timeout=5",
        "te": "trailers",
        "trailer": "x-checksum",
        "proxy-authorization": "Basic c2VjcmV0",
        "x-kept": "yes",
        "user-agent": "my-client/1.0",
    }
    async with forwarding(settings_for(upstream)) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 200
    sent = dict(fake.last.headers)
    for name in ("connection", "x-private", "keep-alive", "te", "trailer", "proxy-authorization"):
        assert name not in sent
    assert sent["x-kept"] == "yes"
    assert sent["user-agent"] == "my-client/1.0"
    assert fake.last.headers_named("host") == [upstream.split("/")[2]]
    assert fake.last.headers_named("content-length") == [str(len(fake.last.body))]


async def test_hop_by_hop_response_headers_are_dropped(fake: FakeUpstream, upstream: str) -> None:
    fake.extra_headers = [
        (b"connection", b"X-Private"),
        (b"x-private", b"for this hop"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-authenticate", b"Basic"),
        (b"x-kept", b"yes"),
    ]
    async with forwarding(settings_for(upstream)) as (client, _):
        response = await client.get("/v1/models")
    assert response.status_code == 200
    for name in ("connection", "x-private", "keep-alive", "proxy-authenticate"):
        assert name not in response.headers
    assert response.headers["x-kept"] == "yes"


@pytest.mark.parametrize(
    ("entry_key", "settings_key", "client_auth", "expected"),
    [
        (ENTRY_KEY, SETTINGS_KEY, CLIENT_AUTH, f"Bearer {ENTRY_KEY}"),
        (None, SETTINGS_KEY, CLIENT_AUTH, f"Bearer {SETTINGS_KEY}"),
        (None, None, CLIENT_AUTH, CLIENT_AUTH),
        (None, None, None, None),
    ],
)
@pytest.mark.parametrize("from_entry", [True, False])
async def test_authorization_precedence(
    fake: FakeUpstream,
    upstream: str,
    from_entry: bool,
    entry_key: str | None,
    settings_key: str | None,
    client_auth: str | None,
    expected: str | None,
) -> None:
    if not from_entry and entry_key is not None:
        expected = f"Bearer {settings_key}"
    key = None if settings_key is None else Secret(settings_key)
    entry = Upstream(upstream, None if entry_key is None else Secret(entry_key))
    wrap = (lambda app: with_upstream(app, entry)) if from_entry else None
    headers = {} if client_auth is None else {"authorization": client_auth}
    async with forwarding(settings_for(upstream, upstream_api_key=key), wrap=wrap) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 200
    assert fake.last.headers_named("authorization") == ([] if expected is None else [expected])
