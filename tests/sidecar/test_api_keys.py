"""PROMPT_MIDDLEWARE_API_KEYS: a sidecar key is required, checked, and never passed on."""

from __future__ import annotations

import httpx2

from prompt_middleware import Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.conftest import RecordingApp


async def test_sidecar_keys() -> None:
    upstream = RecordingApp()
    app = Sidecar(Settings(api_keys=(Secret("key-one"), Secret("key-two"))), upstream=upstream)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://sidecar") as client:
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
