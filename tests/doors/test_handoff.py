"""The middleware's one-call hand-off to a :class:`BodyForwarder` (the sidecar's forwarder).

A forwarder behind the middleware gets the body, the upstream, the waited flag and the
response headers in one call instead of a replayed ASGI request. What must hold is what the
ASGI route gives any other app: the same bytes, the same headers, the status reported.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
import structlog
from starlette.types import Receive, Scope, Send

from examples.starlette_app.app import PROMPTS
from prompt_middleware import ModelEntry, PromptMiddleware, Secret, Settings
from prompt_middleware.handoff import BodyForwarder, HandOff, Upstream
from prompt_middleware.sidecar import Sidecar
from prompt_middleware.sidecar.forwarder import Forwarder
from tests.engine.helpers import RecordingObserver
from tests.fakes.memory import MemoryStore, chat_prompt
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream
from tests.sidecar.test_upstream_faults import closed_port

URL = "/v1/chat/completions"
PROMPT_HEADERS = ("x-prompt-name", "x-prompt-version", "x-prompt-store", "x-prompt-cache")


class RecordingForwarder:
    """A :class:`BodyForwarder` that keeps each hand-off and answers 201 with a small body."""

    def __init__(self) -> None:
        self.handed: list[dict[str, Any]] = []
        self.asgi_calls: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.asgi_calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi"})

    async def forward_body(
        self, scope: Scope, handoff: HandOff, receive: Receive, send: Send
    ) -> int:
        self.handed.append(
            {
                "path": scope["path"],
                "body": handoff.body,
                "upstream": handoff.upstream,
                "waited": handoff.waited,
                "headers": [name.decode() for name, _ in handoff.response_headers],
            }
        )
        headers = [(b"content-type", b"application/json"), *handoff.response_headers]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})
        return 201


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(
        chat_prompt("support", [("system", "Help with {{product}}."), "messages"]),
    )


def test_the_forwarder_takes_bodies_in_one_call() -> None:
    assert isinstance(Forwarder(Settings(upstream_base_url="http://up/v1")), BodyForwarder)
    assert not isinstance(RecordingObserver(), BodyForwarder)


async def test_a_forwarder_gets_what_a_plain_app_would(store: MemoryStore) -> None:
    forwarder = RecordingForwarder()
    observer = RecordingObserver()
    entry = ModelEntry(
        model_name="team-model",
        model="openai/gpt-4o-mini",
        api_base="http://team-upstream/v1",
        api_key=Secret("sk-team"),
    )
    settings = Settings(default_store="mem", model_list=(entry,))
    app = PromptMiddleware(forwarder, settings, stores={"mem": store}, observer=observer)
    managed = {
        "model": "mem/gpt-4o",
        "prompt_id": "support",
        "prompt_variables": {"product": "Acme"},
        "messages": [{"role": "user", "content": "Hi"}],
    }
    unmanaged = b'{"model": "gpt-4o",  "messages": []}'
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        miss = await client.post(URL, json=managed)
        hit = await client.post(URL, json=managed)
        plain = await client.post(URL, content=unmanaged)
        listed = await client.post(URL, json={"model": "team-model", "messages": []})
        other = await client.get("/v1/models")

    assert [r.status_code for r in (miss, hit, plain, listed, other)] == [201, 201, 201, 201, 200]
    first, second, third, fourth = forwarder.handed
    assert json.loads(first["body"]) == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Help with Acme."},
            {"role": "user", "content": "Hi"},
        ],
    }
    assert second["body"] == first["body"]
    assert [h["waited"] for h in forwarder.handed] == [True, False, False, False]
    expected_headers = [*PROMPT_HEADERS, "x-prompt-middleware-overhead-ms"]
    assert first["headers"] == expected_headers
    assert miss.headers["x-prompt-cache"] == "miss"
    assert hit.headers["x-prompt-cache"] == "hit"
    assert float(hit.headers["x-prompt-middleware-overhead-ms"]) >= 0
    # Unmanaged: the client's own bytes, and no prompt headers.
    assert third == {
        "path": URL,
        "body": unmanaged,
        "upstream": None,
        "waited": False,
        "headers": [],
    }
    # A model-list entry: its upstream and model, as the scope key would have carried them.
    assert fourth["upstream"] == Upstream(base_url="http://team-upstream/v1", api_key=entry.api_key)
    assert json.loads(fourth["body"]) == {"model": "gpt-4o-mini", "messages": []}
    assert fourth["headers"] == ["x-prompt-middleware-overhead-ms"]
    # Other routes are plain ASGI; the statuses the forwarder reported are the ones counted.
    assert forwarder.asgi_calls == ["/v1/models"]
    assert [(route, status, cache) for route, status, cache, _ in observer.requests] == [
        (URL, 201, "miss"),
        (URL, 201, "hit"),
        (URL, 201, None),
        (URL, 201, None),
    ]


async def test_the_forwarders_own_errors_carry_the_prompt_headers() -> None:
    # The upstream is down: the 502 is the forwarder's, after a managed rewrite, and says
    # which prompt the request used, as an answer from the upstream would.
    with closed_port() as dead:
        settings = Settings(prompts_dir=str(PROMPTS), upstream_base_url=dead)
        sidecar = Sidecar(settings)
        with structlog.testing.capture_logs():
            async with (
                serve_in_background(sidecar, lifespan="on") as url,
                httpx2.AsyncClient(base_url=url) as client,
            ):
                response = await client.post(
                    URL,
                    json={
                        "model": "file/gpt-4o-mini",
                        "prompt_id": "support/answer",
                        "prompt_variables": {"product": "Acme", "language": "English"},
                        "messages": [{"role": "user", "content": "Hi"}],
                    },
                )
                metrics = (await client.get("/metrics")).text
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unavailable"
    assert response.headers["x-prompt-name"] == "support/answer"
    assert response.headers["x-prompt-store"] == "file"
    assert 'prompt_middleware_requests_total{route="/v1/chat/completions",status="502"} 1.0' in (
        metrics
    )


async def test_the_sidecar_counts_the_upstreams_status() -> None:
    fake = FakeUpstream()
    async with serve_in_background(fake) as upstream:
        settings = Settings(upstream_base_url=upstream + "/v1")
        async with (
            serve_in_background(Sidecar(settings), lifespan="on") as url,
            httpx2.AsyncClient(base_url=url) as client,
        ):
            ok = await client.post(URL, json={"model": "gpt-4o", "messages": []})
            metrics = (await client.get("/metrics")).text
    assert ok.status_code == 200
    assert fake.last.body == b'{"model":"gpt-4o","messages":[]}'
    assert 'prompt_middleware_requests_total{route="/v1/chat/completions",status="200"} 1.0' in (
        metrics
    )
