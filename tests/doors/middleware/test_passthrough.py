"""What the middleware passes on untouched: unmanaged bodies, other routes, methods, scopes."""

from __future__ import annotations

import httpx2
import pytest
from starlette.types import Message, Receive, Scope, Send

from prompt_middleware import PromptMiddleware, Settings
from tests.conftest import ClientFactory, RecordingApp
from tests.doors.middleware.helpers import UNMANAGED, URL, post
from tests.fakes.memory import MemoryStore


async def test_unmanaged_request_reaches_the_app_byte_for_byte(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    response = await post(client, UNMANAGED)
    assert response.status_code == 200
    assert app.last.body == UNMANAGED
    assert "x-prompt-name" not in response.headers


@pytest.mark.parametrize("url", ["/v1/embeddings", "/v1/chat/completions/extra", "/"])
async def test_unmatched_routes_pass_straight_through(
    client: httpx2.AsyncClient, app: RecordingApp, url: str
) -> None:
    response = await post(client, b"not json at all", url=url)
    assert response.status_code == 200
    assert app.last.body == b"not json at all"


async def test_other_methods_on_a_matched_route_pass_through(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    response = await client.get(URL)
    assert response.status_code == 200
    assert app.last.path == URL


async def test_websocket_scopes_are_not_touched() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def never_receive() -> Message:
        raise AssertionError("the middleware must not read a websocket")

    async def never_send(message: Message) -> None:
        raise AssertionError("the middleware must not answer a websocket")

    middleware = PromptMiddleware(inner, Settings())
    await middleware({"type": "websocket", "path": URL, "headers": []}, never_receive, never_send)
    assert seen == ["websocket"]


async def test_second_route_and_custom_routes(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(
        Settings(default_store="mem", routes=("/llm/chat",)), stores={"mem": store}
    )
    body = {"model": "gpt-4o", "prompt_id": "greeting", "prompt_variables": {"name": "A"}}
    assert (await post(client, body, url="/llm/chat")).headers["x-prompt-name"] == "greeting"
    await post(client, body, url=URL)
    assert app.last.json()["prompt_id"] == "greeting"  # not a route of this middleware
