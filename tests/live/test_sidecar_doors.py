"""The sidecar's two doors of an invalidation, in process: ``POST /webhooks/langfuse`` (open,
signed) and ``POST /cache/invalidate`` (behind the sidecar's keys). What is checked is what a
client sees next: the version served and how many times the store was asked.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from prompt_middleware import LocalPromptStore, Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.conftest import RecordingApp
from tests.fakes.langfuse_webhooks import WebhookLangfuse
from tests.fakes.memory import MemoryStore, text_prompt

KEY = "sidecar-key"
WEBHOOK_SECRET = "lf-whsec_" + "5e" * 32
AUTHORISED = {"authorization": f"Bearer {KEY}"}
ASK = {"model": "langfuse/gpt-4o", "prompt_id": "support/answer", "messages": []}
EVENT = (
    b'{"id":"evt-1","timestamp":"2026-12-04T05:00:00.000Z","type":"prompt-version",'
    b'"apiVersion":"v1","action":"updated","prompt":{"name":"support/answer","version":2,'
    b'"labels":["production"],"unknown":{"a":1}}}'
)


@dataclass
class Door:
    http: httpx2.AsyncClient
    store: MemoryStore
    upstream: RecordingApp
    sidecar: Sidecar

    async def version(self) -> str:
        response = await self.http.post("/v1/chat/completions", json=ASK, headers=AUTHORISED)
        assert response.status_code == 200, response.text
        return response.headers["x-prompt-version"]

    def promote(self) -> None:
        """Version 2 takes the production label, as in Langfuse (no one is told yet)."""
        self.store.prompts = [
            text_prompt("support/answer", "one", labels=()),
            text_prompt("support/answer", "two", version=2),
        ]


async def door(settings: Settings) -> AsyncIterator[Door]:
    store = MemoryStore(text_prompt("support/answer", "one"))
    upstream = RecordingApp()
    sidecar = Sidecar(settings, upstream=upstream, stores={"langfuse": store})
    transport = httpx2.ASGITransport(app=sidecar)
    async with httpx2.AsyncClient(transport=transport, base_url="http://sidecar") as http:
        yield Door(http, store, upstream, sidecar)


@pytest.fixture
async def signed_door() -> AsyncIterator[Door]:
    settings = Settings(api_keys=(Secret(KEY),), langfuse_webhook_secret=Secret(WEBHOOK_SECRET))
    async for opened in door(settings):
        yield opened


def signature(body: bytes, *, secret: str = WEBHOOK_SECRET, age: int = 0) -> dict[str, str]:
    return WebhookLangfuse.webhook_headers(secret, body, int(time.time()) - age)


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "missing"),
        (signature(EVENT, secret="lf-whsec_other"), "wrong secret"),
        (signature(EVENT.replace(b"evt-1", b"evt-2")), "signs another body"),
        (signature(EVENT, age=301), "replayed: t too old"),
        ({"x-langfuse-signature": "v1=abc"}, "malformed: no t"),
        ({"x-langfuse-signature": "t=soon,v1=abc"}, "malformed: t not a number"),
        ({"x-langfuse-signature": "garbage"}, "malformed"),
    ],
)
async def test_a_delivery_not_signed_by_langfuse_is_401_and_changes_nothing(
    signed_door: Door, headers: dict[str, str], why: str
) -> None:
    assert await signed_door.version() == "1"
    signed_door.promote()
    refused = await signed_door.http.post("/webhooks/langfuse", content=EVENT, headers=headers)
    assert refused.status_code == 401, why
    assert refused.json()["error"]["code"] == "invalid_signature"
    assert WEBHOOK_SECRET not in refused.text
    assert await signed_door.version() == "1"  # still cached: nothing was invalidated
    assert signed_door.store.total_calls == 1


async def test_a_signed_delivery_needs_no_key_and_every_retry_is_accepted(
    signed_door: Door,
) -> None:
    assert await signed_door.version() == "1"
    signed_door.promote()
    headers = signature(EVENT)
    for calls in (2, 3):  # Langfuse's retry: the same body and headers
        accepted = await signed_door.http.post("/webhooks/langfuse", content=EVENT, headers=headers)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {
            "status": "invalidated",
            "store": "langfuse",
            "prompt_id": "support/answer",
        }
        assert await signed_door.version() == "2"
        assert signed_door.store.total_calls == calls  # asked again, once per delivery
    assert signed_door.upstream.requests[-1].path == "/v1/chat/completions"  # none forwarded


async def test_a_signed_body_that_is_not_an_event_is_400(signed_door: Door) -> None:
    body = b'{"type": "prompt-version", "prompt": {"version": 2}}'
    response = await signed_door.http.post(
        "/webhooks/langfuse", content=body, headers=signature(body)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


async def test_without_a_webhook_secret_the_path_is_the_upstreams() -> None:
    async for opened in door(Settings(api_keys=(Secret(KEY),))):
        refused = await opened.http.post("/webhooks/langfuse", content=EVENT)
        assert refused.json()["error"]["code"] == "invalid_api_key"  # no door of its own
        passed = await opened.http.post("/webhooks/langfuse", content=EVENT, headers=AUTHORISED)
        assert passed.status_code == 200
        assert opened.upstream.last.path == "/webhooks/langfuse"


async def test_invalidate_needs_a_sidecar_key(signed_door: Door) -> None:
    assert await signed_door.version() == "1"
    signed_door.promote()
    body = {"store": "langfuse", "prompt_id": "support/answer"}
    for headers in ({}, {"authorization": "Bearer wrong"}, signature(EVENT)):
        refused = await signed_door.http.post("/cache/invalidate", json=body, headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
    assert await signed_door.version() == "1"
    accepted = await signed_door.http.post("/cache/invalidate", json=body, headers=AUTHORISED)
    assert accepted.status_code == 200
    assert accepted.json() == {**body, "status": "invalidated"}
    assert await signed_door.version() == "2"
    assert signed_door.store.total_calls == 2
    assert signed_door.upstream.requests[-1].path == "/v1/chat/completions"  # none forwarded


async def test_invalidate_everything_or_refuse_an_unknown_store(signed_door: Door) -> None:
    assert await signed_door.version() == "1"
    signed_door.promote()
    unknown = await signed_door.http.post(
        "/cache/invalidate", json={"store": "nowhere"}, headers=AUTHORISED
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["param"] == "store"
    everything = await signed_door.http.post("/cache/invalidate", json={}, headers=AUTHORISED)
    assert everything.json() == {"status": "invalidated"}
    assert await signed_door.version() == "2"


async def test_invalidate_rereads_a_local_folder_at_once(tmp_path: Path) -> None:
    prompt = tmp_path / "greeting.yaml"
    prompt.write_text("prompt: Hello from the first file\n")
    # A folder re-read only hourly: only the invalidation can show the edit.
    docs = LocalPromptStore(tmp_path, poll_interval=3600)
    sidecar = Sidecar(Settings(prompts_dir=str(tmp_path), echo=True), stores={"docs": docs})
    transport = httpx2.ASGITransport(app=sidecar)
    ask = {"model": "docs/m", "prompt_id": "greeting", "messages": []}
    async with httpx2.AsyncClient(transport=transport, base_url="http://sidecar") as http:
        first = await http.post("/v1/chat/completions", json=ask)
        assert "first file" in first.text
        prompt.write_text("prompt: Hello from the edited file\n")
        assert "first file" in (await http.post("/v1/chat/completions", json=ask)).text
        answer = await http.post(
            "/cache/invalidate", json={"store": "docs", "prompt_id": "greeting"}
        )
        assert answer.status_code == 200
        assert "edited file" in (await http.post("/v1/chat/completions", json=ask)).text
        # "dotprompt" is the local folder's other name.
        alias = await http.post("/cache/invalidate", json={"store": "dotprompt"})
        assert alias.json() == {"status": "invalidated", "store": "file"}


async def test_the_middleware_answers_the_webhook_and_owns_the_live_updates(
    signed_door: Door,
) -> None:
    # One owner: the sidecar lets the delivery through without a key, to the middleware.
    sidecar = signed_door.sidecar
    assert sidecar.endpoints["/webhooks/langfuse"].handle is sidecar.middleware
    assert sidecar.endpoints["/webhooks/langfuse"].open
    assert sidecar.live is sidecar.middleware.live


async def test_an_oversized_invalidation_is_refused_as_the_doors_refuse_a_body() -> None:
    settings = Settings(api_keys=(Secret(KEY),), max_body_bytes=100)
    body = b'{"prompt_id": "' + b"x" * 200 + b'"}'
    async for opened in door(settings):
        answers = [
            await opened.http.post(path, content=body, headers=AUTHORISED)
            for path in ("/cache/invalidate", "/v1/chat/completions")
        ]
        assert [a.status_code for a in answers] == [413, 413]
        invalidate, chat = (a.json()["error"] for a in answers)
        assert invalidate == chat
        assert invalidate["message"] == (
            "The request body is larger than 100 bytes (PROMPT_MIDDLEWARE_MAX_BODY_BYTES)."
        )
