"""The upstream URL: base URL + path (with or without /v1) + query."""

from __future__ import annotations

import pytest

from prompt_middleware.sidecar.forwarder import targets
from tests.fakes.upstream import FakeUpstream
from tests.sidecar.forwarder.helpers import CHAT, forwarding, settings_for


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
async def test_path_with_or_without_v1_goes_to_base_url(
    fake: FakeUpstream, upstream: str, path: str
) -> None:
    async with forwarding(settings_for(upstream)) as (client, _):
        response = await client.get(path + "?limit=2&after=a%20b&x=%2F")
    assert response.status_code == 200
    assert response.json()["data"][0]["id"] == "gpt-4o"
    assert fake.last.path == "/v1/models"
    assert fake.last.query == "limit=2&after=a%20b&x=%2F"
    assert fake.last.body == b""


async def test_each_request_keeps_its_own_path_and_query(fake: FakeUpstream, upstream: str) -> None:
    # The quoted upstream URL of a path is worked out once; the query is each request's own.
    sent = []
    async with forwarding(settings_for(upstream)) as (client, _):
        for target in ("/v1/files/a b?x=1", "/v1/files/a b?x=2", "/v1/files/a b", "/v1/models"):
            await client.get(target)
            sent.append((fake.last.path, fake.last.query))
    # The fake records the path as its server decoded it (the raw one was a%20b).
    assert sent == [
        ("/v1/files/a b", "x=1"),
        ("/v1/files/a b", "x=2"),
        ("/v1/files/a b", ""),
        ("/v1/models", ""),
    ]


def test_remembered_upstream_urls_stay_bounded_and_right() -> None:
    remembered = targets._path_url
    sizes = []
    for i in range(targets.MAX_URLS + 100):
        url = remembered("http://upstream:8000/v1", f"/v1/files/{i} x")
        assert str(url) == f"http://upstream:8000/v1/files/{i}%20x"
        sizes.append(remembered.cache_info().currsize)
    assert max(sizes) == targets.MAX_URLS


async def test_base_url_prefix_is_kept(fake: FakeUpstream, upstream: str) -> None:
    base = upstream.removesuffix("/v1") + "/openai/deployments/x/"
    async with forwarding(settings_for(base)) as (client, _):
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert fake.last.path == "/openai/deployments/x/chat/completions"
    # The fake's own 404 comes back as it sent it.
    assert response.status_code == 404
    assert (
        response.json()["error"]["message"] == "Unknown path /openai/deployments/x/chat/completions"
    )
