"""The webhook and invalidate doors, in process: status codes, error bodies, what is published."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import pytest
from starlette.types import Message, Receive, Scope, Send

from prompt_middleware.errors import InvalidRequest
from prompt_middleware.live.bus import Invalidation, InvalidationBus
from prompt_middleware.live.endpoints import (
    INVALIDATE_PATH,
    WEBHOOK_PATH,
    answer_invalidate,
    answer_webhook,
)
from prompt_middleware.live.webhook import WebhookVerifier, signature_header

SECRET = "lf-whsec_" + "cd" * 32
EVENT = (
    b'{"id":"e1","timestamp":"2026-12-04T05:00:00Z","type":"prompt-version","apiVersion":"v1",'
    b'"action":"deleted","prompt":{"name":"support/answer","version":2,"labels":[]}}'
)


def store_prefix(name: str) -> str:
    prefixes = {"file": "file", "dotprompt": "file", "langfuse": "langfuse"}
    if name not in prefixes:
        raise InvalidRequest(f"No store '{name}'.", param="store")
    return prefixes[name]


class App:
    def __init__(self) -> None:
        self.bus = InvalidationBus()
        self.seen: list[tuple[str | None, str | None]] = []
        self.bus.subscribe(self._record)
        self.verifier = WebhookVerifier(SECRET)

    def _record(self, invalidation: Invalidation) -> None:
        self.seen.append((invalidation.store, invalidation.prompt))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == WEBHOOK_PATH:
            await answer_webhook(scope, receive, send, verifier=self.verifier, bus=self.bus)
        else:
            assert scope["path"] == INVALIDATE_PATH
            await answer_invalidate(
                scope,
                receive,
                send,
                bus=self.bus,
                store_prefix=store_prefix,
                max_body_bytes=4096,
            )


@pytest.fixture
async def app() -> App:
    return App()


def client(app: App) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://sidecar")


def signed(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    header = signature_header(SECRET, body, timestamp or int(time.time()))
    return {"x-langfuse-signature": header.decode(), "content-type": "application/json"}


async def test_a_signed_prompt_version_event_invalidates_that_prompt(app: App) -> None:
    async with client(app) as http:
        response = await http.post(WEBHOOK_PATH, content=EVENT, headers=signed(EVENT))
    assert response.status_code == 200
    assert response.json() == {
        "status": "invalidated",
        "store": "langfuse",
        "prompt_id": "support/answer",
    }
    assert app.seen == [("langfuse", "support/answer")]


async def test_a_duplicate_delivery_is_accepted_again(app: App) -> None:
    headers = signed(EVENT)
    async with client(app) as http:
        first = await http.post(WEBHOOK_PATH, content=EVENT, headers=headers)
        second = await http.post(WEBHOOK_PATH, content=EVENT, headers=headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert app.seen == [("langfuse", "support/answer")] * 2


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-langfuse-signature": "nonsense"},
        {"x-langfuse-signature": "t=1,v1=00"},
    ],
)
async def test_an_unsigned_or_badly_signed_delivery_is_401_and_changes_nothing(
    app: App, headers: dict[str, str]
) -> None:
    async with client(app) as http:
        response = await http.post(WEBHOOK_PATH, content=EVENT, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert app.seen == []


async def test_a_delivery_signed_too_long_ago_is_401(app: App) -> None:
    async with client(app) as http:
        old = signed(EVENT, int(time.time()) - 301)
        response = await http.post(WEBHOOK_PATH, content=EVENT, headers=old)
    assert response.status_code == 401
    assert app.seen == []


async def test_a_signed_body_that_is_not_an_event_is_400(app: App) -> None:
    body = b'{"type": "prompt-version"}'
    async with client(app) as http:
        response = await http.post(WEBHOOK_PATH, content=body, headers=signed(body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert app.seen == []


async def test_other_event_types_are_answered_200_and_ignored(app: App) -> None:
    body = b'{"type": "trace-created", "id": "x"}'
    async with client(app) as http:
        response = await http.post(WEBHOOK_PATH, content=body, headers=signed(body))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    assert app.seen == []


MIB = 1024 * 1024


class Delivery:
    """A webhook request made by hand: its body arrives in ``chunk``-byte messages, and every
    message the app asks for is counted."""

    def __init__(self, headers: dict[str, str], size: int, chunk: int = 64 * 1024) -> None:
        self.scope: Scope = {
            "type": "http",
            "method": "POST",
            "path": WEBHOOK_PATH,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }
        self._left = size
        self._chunk = chunk
        self.asked = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.asked += 1
        part = min(self._left, self._chunk)
        self._left -= part
        return {"type": "http.request", "body": b" " * part, "more_body": self._left > 0}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def answer(self, app: App) -> tuple[int, dict[str, Any]]:
        await app(self.scope, self.receive, self.send)
        return self.sent[0]["status"], json.loads(self.sent[1]["body"])


@pytest.mark.parametrize(
    "signature",
    [None, "nonsense", "t=1,v1=00", f"t={int(time.time()) - 301},v1=00", "v1=00", "t=1"],
)
async def test_a_16_mib_delivery_with_a_bad_header_is_401_before_any_of_it_is_read(
    app: App, signature: str | None
) -> None:
    headers = {"content-length": str(16 * MIB)}
    if signature is not None:
        headers["x-langfuse-signature"] = signature
    delivery = Delivery(headers, 16 * MIB)
    status, error = await delivery.answer(app)
    assert (status, error["error"]["code"]) == (401, "invalid_signature")
    assert delivery.asked == 0
    assert app.seen == []


async def test_a_signed_2_mib_delivery_is_413_as_soon_as_it_passes_1_mib(app: App) -> None:
    body = b" " * (2 * MIB)
    delivery = Delivery({"x-langfuse-signature": signed(body)["x-langfuse-signature"]}, 2 * MIB)
    status, error = await delivery.answer(app)
    assert (status, error["error"]["code"]) == (413, "request_too_large")
    assert delivery.asked == MIB // (64 * 1024) + 1  # the message that passed 1 MiB, no more
    assert app.seen == []


async def test_a_delivery_declaring_more_than_1_mib_is_413_before_any_of_it_is_read(
    app: App,
) -> None:
    body = b" " * (MIB + 1)
    headers = {**signed(body), "content-length": str(len(body))}
    delivery = Delivery(headers, len(body))
    status, error = await delivery.answer(app)
    assert (status, error["error"]["code"]) == (413, "request_too_large")
    assert "1048576 bytes" in error["error"]["message"]
    assert delivery.asked == 0


async def test_a_signed_delivery_of_1_mib_is_read_whole(app: App) -> None:
    padded = EVENT[:-1] + b" " * (MIB - len(EVENT)) + b"}"
    async with client(app) as http:
        response = await http.post(WEBHOOK_PATH, content=padded, headers=signed(padded))
    assert response.status_code == 200
    assert app.seen == [("langfuse", "support/answer")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", (None, None)),
        (b"{}", (None, None)),
        (b'{"store": "file"}', ("file", None)),
        (b'{"prompt_id": "greeting"}', (None, "greeting")),
        (b'{"store": "dotprompt", "prompt_id": "greeting"}', ("file", "greeting")),
    ],
)
async def test_invalidate_publishes_what_it_was_asked(
    app: App, body: bytes, expected: tuple[str | None, str | None]
) -> None:
    async with client(app) as http:
        response = await http.post(INVALIDATE_PATH, content=body)
    assert response.status_code == 200
    assert response.json()["status"] == "invalidated"
    assert app.seen == [expected]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"[]", None),
        (b"{", None),
        (b'{"store": 1}', None),
        (b'{"prompt": "x"}', None),  # a misspelt field must not invalidate everything
        (b'{"store": "nowhere"}', "store"),
    ],
)
async def test_invalidate_refuses_what_it_cannot_read(
    app: App, body: bytes, param: str | None
) -> None:
    async with client(app) as http:
        response = await http.post(INVALIDATE_PATH, content=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["param"] == param
    assert app.seen == []
