"""The sidecar's own endpoints: answered by the sidecar for their methods, behind its keys
unless open; any other method on their path goes on to the upstream."""

from __future__ import annotations

import httpx2
from starlette.types import Receive, Scope, Send

from prompt_middleware import Secret, Settings
from prompt_middleware.asgi import send_response
from prompt_middleware.sidecar import Endpoint, Sidecar
from tests.conftest import RecordingApp


async def test_an_endpoint_needs_a_key_unless_open_and_only_answers_its_methods() -> None:
    upstream = RecordingApp()
    app = Sidecar(Settings(api_keys=(Secret("key-one"),)), upstream=upstream)
    seen: list[tuple[str, str]] = []

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["method"], scope["path"]))
        await send_response(send, 202, b'{"done":true}')

    app.endpoints["/own"] = Endpoint(answer, frozenset({"POST"}))
    app.endpoints["/hook"] = Endpoint(answer, frozenset({"POST"}), open=True)
    key = {"authorization": "Bearer key-one"}
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://sidecar") as client:
        refused = await client.post("/own")
        own = await client.post("/own", headers=key)
        hook = await client.post("/hook")
        other_method = await client.get("/own", headers=key)

    assert refused.status_code == 401
    assert (own.status_code, own.json()) == (202, {"done": True})
    assert hook.status_code == 202
    assert seen == [("POST", "/own"), ("POST", "/hook")]
    assert other_method.status_code == 200
    assert [request.path for request in upstream.requests] == ["/own"]
