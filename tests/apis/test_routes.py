"""Which routes are managed, and as which API (README, "Three APIs"): the path's suffix; a bare
``/messages`` and ``/v1/messages/count_tokens`` are not managed; the log line names a replaced
system slot."""

from __future__ import annotations

import pytest
import structlog

from prompt_middleware import Settings
from prompt_middleware.apis import CHAT, MESSAGES, RESPONSES, Api, api_for_path
from prompt_middleware.settings import DEFAULT_ROUTES
from tests.conftest import ClientFactory, RecordingApp
from tests.fakes.memory import MemoryStore, chat_prompt

PROMPTED = b'{"model":"m","prompt_id":"p","messages":[]}'


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(chat_prompt("p", [("system", "Be brief."), ("user", "Hi.")]))


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/v1/chat/completions", CHAT),
        ("/openai/deployments/x/chat/completions", CHAT),
        ("/v1/responses", RESPONSES),
        ("/responses", RESPONSES),
        ("/v1/messages", MESSAGES),
        ("/anthropic/v1/messages", MESSAGES),
        ("/v1/custom", CHAT),
    ],
)
def test_a_routes_api_is_the_one_its_path_ends_with(path: str, api: Api) -> None:
    assert api_for_path(path) is api


def test_the_default_routes() -> None:
    assert DEFAULT_ROUTES == (
        "/v1/chat/completions",
        "/chat/completions",
        "/v1/responses",
        "/responses",
        "/v1/messages",
    )


@pytest.mark.parametrize("path", ["/messages", "/v1/messages/count_tokens"])
async def test_a_bare_messages_path_and_count_tokens_are_not_managed(
    make_client: ClientFactory, app: RecordingApp, store: MemoryStore, path: str
) -> None:
    routes = (*DEFAULT_ROUTES, "/v1/messages/count_tokens")  # even when configured
    client = make_client(Settings(default_store="mem", routes=routes), stores={"mem": store})
    response = await client.post(path, content=PROMPTED)
    assert response.status_code == 200
    assert app.last.body == PROMPTED
    assert store.total_calls == 0


async def test_each_route_writes_its_apis_body(
    make_client: ClientFactory, app: RecordingApp, store: MemoryStore
) -> None:
    client = make_client(Settings(default_store="mem"), stores={"mem": store})
    await client.post("/v1/messages", content=PROMPTED)
    assert app.last.body == (
        b'{"model":"m","messages":[{"role":"user","content":"Hi."}],"system":"Be brief."}'
    )
    await client.post("/responses", content=b'{"model":"m","prompt_id":"p","input":"x"}')
    assert app.last.body == (
        b'{"model":"m","input":[{"role":"user","content":"Hi."},{"role":"user","content":"x"}],'
        b'"instructions":"Be brief."}'
    )
    await client.post("/chat/completions", content=PROMPTED)
    assert app.last.body == (
        b'{"model":"m","messages":[{"role":"system","content":"Be brief."},'
        b'{"role":"user","content":"Hi."}]}'
    )


async def test_an_error_on_a_messages_route_is_in_anthropics_shape(
    make_client: ClientFactory, app: RecordingApp, store: MemoryStore
) -> None:
    client = make_client(Settings(default_store="mem"), stores={"mem": store})
    response = await client.post("/v1/messages", content=b"[1]")
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "The request body must be a JSON object.",
            "code": "invalid_request",
            "details": {"error_code": "invalid_request"},
        },
    }
    response = await client.post("/v1/responses", content=b"[1]")
    assert response.json()["error"]["code"] == "invalid_request"  # OpenAI's shape
    assert app.requests == []


async def test_the_log_line_names_the_clients_system_text_the_prompt_replaced(
    make_client: ClientFactory, store: MemoryStore
) -> None:
    client = make_client(Settings(default_store="mem"), stores={"mem": store})
    with structlog.testing.capture_logs() as logs:
        await client.post(
            "/v1/responses", content=b'{"model":"m","prompt_id":"p","instructions":"x"}'
        )
        await client.post("/v1/messages", content=PROMPTED)
    lines = [entry for entry in logs if entry["event"] == "prompt_request"]
    assert [line.get("replaced") for line in lines] == ["instructions", None]
