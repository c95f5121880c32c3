"""/healthz, /readyz (ready once prompts are prewarmed) and /metrics."""

from __future__ import annotations

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from examples.starlette_app.app import PROMPTS
from prompt_middleware import Settings
from prompt_middleware.sidecar import Sidecar
from tests.fakes.server import serve_in_background


async def test_health_readiness_and_metrics() -> None:
    app = Sidecar(Settings(prompts_dir=str(PROMPTS), echo=True, prewarm=("greeting",)))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        assert (await client.get("/healthz")).status_code == 200
        not_ready = await client.get("/readyz")
        assert (not_ready.status_code, not_ready.json()) == (503, {"ready": False})
    async with (
        serve_in_background(app, lifespan="on") as url,
        httpx2.AsyncClient(base_url=url) as client,
    ):
        assert (await client.get("/readyz")).json() == {"ready": True}
        body = {
            "model": "file/m",
            "prompt_id": "greeting",
            "prompt_variables": {"name": "A", "company": "B"},
        }
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        await client.post("/v1/chat/completions", json={**body, "prompt_id": "nope"})
        text = (await client.get("/metrics")).text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    route = "/v1/chat/completions"
    assert samples[("prompt_middleware_requests_total", (("route", route), ("status", "200")))] == 1
    assert samples[("prompt_middleware_requests_total", (("route", route), ("status", "404")))] == 1
    assert samples[("prompt_middleware_prompt_cache_total", (("result", "hit"),))] == 1
    assert (
        samples[
            ("prompt_middleware_store_fetch_seconds_count", (("outcome", "ok"), ("store", "file")))
        ]
        == 1
    )
    assert ("prompt_middleware_overhead_seconds_count", ()) in samples
