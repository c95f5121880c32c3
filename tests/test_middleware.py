"""The middleware end to end in process: the bytes the wrapped app receives, statuses, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from starlette.types import Message, Receive, Scope, Send

from prompt_middleware import ModelEntry, PromptMiddleware, Settings
from tests.conftest import ClientFactory, RecordingApp
from tests.fakes.memory import MemoryStore, chat_prompt, text_prompt, unavailable

URL = "/v1/chat/completions"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(
        text_prompt("greeting", "Hello {{ name }}, welcome to {{place}}."),
        chat_prompt(
            "support/answer",
            [("system", "You help with {{product}}."), "messages"],
            config={
                "model": "gpt-4o",
                "temperature": 0.2,
                "max_tokens": 300,
                "notes": "not a parameter",
            },
        ),
        chat_prompt("fewshot", [("system", "Answer."), "examples", ("user", "{{question}}")]),
        text_prompt("greeting", "Hi {{name}} (v2)", version=2, labels=("staging",)),
    )


@pytest.fixture
def client(make_client: ClientFactory, store: MemoryStore) -> httpx.AsyncClient:
    return make_client(Settings(default_store="mem"), stores={"mem": store})


def post(
    client: httpx.AsyncClient, body: Any, url: str = URL, headers: dict[str, str] | None = None
) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        url, content=content, headers={"content-type": "application/json", **(headers or {})}
    )


# --- what passes through untouched ---------------------------------------------------------

UNMANAGED = (
    b'{ "model" : "gpt-4o",\n "messages": [{"role":"user","content":"caf\\u00e9 \xc3\xa9"}],'
    b' "seed": 12345678901234567890123, "temperature": 1e-7, "x": {"y": [1, {"z": null}]} }'
)


async def test_unmanaged_request_reaches_the_app_byte_for_byte(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    response = await post(client, UNMANAGED)
    assert response.status_code == 200
    assert app.last.body == UNMANAGED
    assert "x-prompt-name" not in response.headers


@pytest.mark.parametrize("url", ["/v1/embeddings", "/v1/chat/completions/extra", "/"])
async def test_unmatched_routes_pass_straight_through(
    client: httpx.AsyncClient, app: RecordingApp, url: str
) -> None:
    response = await post(client, b"not json at all", url=url)
    assert response.status_code == 200
    assert app.last.body == b"not json at all"


async def test_other_methods_on_a_matched_route_pass_through(
    client: httpx.AsyncClient, app: RecordingApp
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


# --- the rewrite -----------------------------------------------------------------------------


async def test_text_prompt_becomes_one_user_message(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    response = await post(
        client,
        {
            "model": "gpt-4o-mini",
            "prompt_id": "greeting",
            "prompt_variables": {"name": "Ada", "place": "Langfuse"},
            "messages": [{"role": "user", "content": "ignored"}],
        },
    )
    assert response.status_code == 200
    assert app.last.json() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello Ada, welcome to Langfuse."}],
    }
    assert response.headers["x-prompt-name"] == "greeting"
    assert response.headers["x-prompt-version"] == "1"
    assert response.headers["x-prompt-store"] == "mem"
    assert response.headers["x-prompt-cache"] == "miss"
    assert float(response.headers["x-prompt-middleware-overhead-ms"]) >= 0


async def test_untouched_fields_are_copied_byte_for_byte(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    body = (
        b'{"model":"gpt-4o","prompt_id":"greeting","prompt_variables":{"name":"x"},'
        b'"seed":12345678901234567890123,"temperature":1e-7,"user":"caf\\u00e9 \xc3\xa9",'
        b'"metadata":{"deep":[1,{"a":[true,null,-0.0]}]},"stream":true}'
    )
    await post(client, body)
    sent = app.last.body
    for fragment in (
        b'"seed":12345678901234567890123',
        b'"temperature":1e-7',
        b'"user":"caf\\u00e9 \xc3\xa9"',
        b'"metadata":{"deep":[1,{"a":[true,null,-0.0]}]}',
        b'"stream":true',
    ):
        assert fragment in sent
    assert b"prompt_" not in sent


async def test_content_length_is_corrected_and_chunked_encoding_dropped(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    async def chunks() -> Any:
        yield b'{"model":"gpt-4o","prompt_id":"greeting",'
        yield b'"prompt_variables":{"name":"Ada","place":"here"}}'

    response = await client.post(URL, content=chunks())
    assert response.status_code == 200
    assert int(app.last.headers["content-length"]) == len(app.last.body)
    assert "transfer-encoding" not in app.last.headers


async def test_version_and_label_select_the_prompt(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    base = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "B"}}
    await post(client, {**base, "prompt_version": 2})
    assert app.last.json()["messages"][0]["content"] == "Hi B (v2)"
    await post(client, {**base, "prompt_version": "2"})
    assert app.last.json()["messages"][0]["content"] == "Hi B (v2)"
    response = await post(client, {**base, "prompt_label": "staging"})
    assert response.headers["x-prompt-version"] == "2"


async def test_chat_prompt_messages_placeholder_takes_the_client_messages(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    history = [
        {"role": "user", "content": "Where is my {{product}}?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "track", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
    ]
    await post(
        client,
        {
            "model": "ignored",
            "prompt_id": "support/answer",
            "prompt_variables": {"product": "parcel"},
            "messages": history,
        },
    )
    sent = app.last.json()
    assert sent["messages"] == [
        {"role": "system", "content": "You help with parcel."},
        history[0],  # the client's own messages go in as sent, never templated
        history[1],
        history[2],
    ]


async def test_config_model_and_parameters_win_by_default(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    await post(
        client,
        {
            "model": "gpt-3.5",
            "prompt_id": "support/answer",
            "temperature": 0.9,
            "top_p": 0.5,
            "messages": [],
            "prompt_variables": {"product": "x"},
        },
    )
    sent = app.last.json()
    assert sent["model"] == "gpt-4o"
    assert sent["temperature"] == 0.2
    assert sent["max_tokens"] == 300
    assert sent["top_p"] == 0.5
    assert "notes" not in sent


async def test_request_parameters_win_when_configured(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(
        Settings(default_store="mem", param_precedence="request"), stores={"mem": store}
    )
    await post(
        client,
        {
            "model": "gpt-3.5",
            "prompt_id": "support/answer",
            "temperature": 0.9,
            "messages": [],
            "prompt_variables": {"product": "x"},
        },
    )
    sent = app.last.json()
    assert (sent["temperature"], sent["max_tokens"], sent["model"]) == (0.9, 300, "gpt-4o")


async def test_text_prompt_role_and_append_mode(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(
        Settings(default_store="mem", text_prompt_role="system", client_messages="append"),
        stores={"mem": store},
    )
    await post(
        client,
        {
            "model": "m",
            "prompt_id": "greeting",
            "prompt_variables": {"name": "C", "place": "P"},
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert app.last.json()["messages"] == [
        {"role": "system", "content": "Hello C, welcome to P."},
        {"role": "user", "content": "hi"},
    ]


async def test_placeholder_variables_and_empty_placeholder(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    shots = [{"role": "user", "content": "2+2"}, {"role": "assistant", "content": "4"}]
    await post(
        client,
        {
            "model": "m",
            "prompt_id": "fewshot",
            "prompt_variables": {"examples": shots, "question": "3+3"},
        },
    )
    assert app.last.json()["messages"] == [
        {"role": "system", "content": "Answer."},
        *shots,
        {"role": "user", "content": "3+3"},
    ]
    await post(
        client,
        {
            "model": "m",
            "prompt_id": "fewshot",
            "prompt_variables": {"examples": [], "question": "q"},
        },
    )
    assert len(app.last.json()["messages"]) == 2


async def test_store_prefix_and_provider_prefix_are_removed(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(Settings(), stores={"mem": store})
    await post(
        client,
        {
            "model": "mem/openai/gpt-4o-mini",
            "prompt_id": "greeting",
            "prompt_variables": {"name": "D", "place": "E"},
        },
    )
    assert app.last.json()["model"] == "gpt-4o-mini"


async def test_store_prefix_without_prompt_is_stripped_and_not_managed(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    response = await post(client, {"model": "mem/gpt-4o", "messages": []})
    assert app.last.json() == {"model": "gpt-4o", "messages": []}
    assert "x-prompt-name" not in response.headers


async def test_model_list_entry_supplies_prompt_model_and_defaults(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    entries = (
        ModelEntry(
            model_name="support-bot",
            model="mem/gpt-4o-mini",
            prompt_id="greeting",
            prompt_label="staging",
            params={"temperature": 0.3, "seed": 7},
        ),
        ModelEntry(model_name="plain", model="openai/gpt-4.1", params={"temperature": 0.1}),
    )
    client = make_client(Settings(model_list=entries), stores={"mem": store})
    response = await post(
        client, {"model": "support-bot", "seed": 1, "prompt_variables": {"name": "F"}}
    )
    assert app.last.json() == {
        "model": "gpt-4o-mini",
        "seed": 1,
        "temperature": 0.3,
        "messages": [{"role": "user", "content": "Hi F (v2)"}],
    }
    assert response.headers["x-prompt-version"] == "2"
    response = await post(client, {"model": "plain", "messages": []})
    assert app.last.json() == {"model": "gpt-4.1", "messages": [], "temperature": 0.1}
    assert "x-prompt-name" not in response.headers


async def test_cache_header_reports_hits(client: httpx.AsyncClient, store: MemoryStore) -> None:
    body = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "G"}}
    statuses = [(await post(client, body)).headers["x-prompt-cache"] for _ in range(3)]
    assert statuses == ["miss", "hit", "hit"]
    assert store.total_calls == 1


async def test_prompt_name_header_cannot_be_split(
    make_client: ClientFactory, app: RecordingApp
) -> None:
    store = MemoryStore(text_prompt("evil\r\nset-cookie: x=1 é", "text"))
    client = make_client(Settings(default_store="mem"), stores={"mem": store})
    response = await post(client, {"model": "m", "prompt_id": "evil\r\nset-cookie: x=1 é"})
    assert response.headers["x-prompt-name"] == "evil%0D%0Aset-cookie:%20x=1%20%C3%A9"
    assert "set-cookie" not in response.headers


# --- errors ----------------------------------------------------------------------------------


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (b"{not json", None, "not valid JSON"),
        (b'["a list"]', None, "must be a JSON object"),
        (b'{"model": 3, "prompt_id": "greeting"}', "model", "'model' must be a string"),
        (b'{"prompt_id": 7}', "prompt_id", "'prompt_id' must be a string"),
        (b'{"prompt_id": "greeting", "prompt_variables": []}', "prompt_variables", "JSON object"),
        (b'{"prompt_id": "greeting", "prompt_label": 1}', "prompt_label", "string"),
        (b'{"prompt_id": "greeting", "prompt_version": "v2"}', "prompt_version", "digits"),
        (b'{"prompt_id": "greeting", "prompt_version": 1.5}', "prompt_version", "integer"),
        (
            b'{"prompt_id": "support/answer", "prompt_variables": {}, "messages": {}}',
            "messages",
            "JSON array",
        ),
    ],
)
async def test_malformed_requests_are_400_invalid_request(
    client: httpx.AsyncClient, app: RecordingApp, body: bytes, param: str | None, fragment: str
) -> None:
    response = await post(client, body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["type"], error["param"]) == (
        "invalid_request",
        "invalid_request_error",
        param,
    )
    assert fragment in error["message"]
    assert app.requests == []


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (
            {"prompt_id": "greeting", "prompt_label": "staging", "prompt_version": 2},
            "prompt_version",
            "not both",
        ),
        (
            {"prompt_id": "fewshot", "prompt_variables": {"question": "q"}},
            "prompt_variables",
            "['examples']",
        ),
        (
            {"prompt_id": "support/answer", "prompt_variables": {"product": "p"}},
            "prompt_variables",
            "['messages']",
        ),
        (
            {"prompt_id": "fewshot", "prompt_variables": {"examples": "text", "question": "q"}},
            "prompt_variables",
            "list of messages",
        ),
        (
            {"prompt_id": "fewshot", "prompt_variables": {"examples": [{"content": "x"}]}},
            "prompt_variables",
            "'role'",
        ),
        ({"model": "m", "prompt_variables": {"a": 1}}, "prompt_id", "without prompt_id"),
        ({"prompt_id": ""}, "prompt_id", "must not be empty"),
        ({"prompt_id": "greeting", "prompt_version": 0}, "prompt_version", "1 or more"),
        ({"model": "langfuse/gpt-4o", "prompt_id": "greeting"}, "model", "LANGFUSE_PUBLIC_KEY"),
        ({"model": "humanloop/gpt-4o", "prompt_id": "greeting"}, "model", "HUMANLOOP_API_KEY"),
    ],
)
async def test_unservable_prompt_requests_are_400_invalid_prompt_request(
    client: httpx.AsyncClient, app: RecordingApp, body: dict[str, Any], param: str, fragment: str
) -> None:
    response = await post(client, body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("invalid_prompt_request", param)
    assert fragment in error["message"]
    assert app.requests == []


async def test_strict_variables_lists_what_is_missing(
    make_client: ClientFactory, store: MemoryStore
) -> None:
    client = make_client(
        Settings(default_store="mem", strict_variables=True), stores={"mem": store}
    )
    response = await post(client, {"prompt_id": "greeting", "prompt_variables": {}})
    error = error_of(response)
    assert response.status_code == 400
    assert error["code"] == "invalid_prompt_request"
    assert "['name', 'place']" in error["message"]


async def test_missing_variables_stay_as_written_and_are_logged(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    with structlog.testing.capture_logs() as logs:
        await post(
            client, {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "H"}}
        )
    assert app.last.json()["messages"][0]["content"] == "Hello H, welcome to {{place}}."
    warning = next(log for log in logs if log["event"] == "prompt_variables_missing")
    assert warning["variables"] == ["place"]
    assert warning["log_level"] == "warning"


async def test_unknown_prompt_is_404(client: httpx.AsyncClient) -> None:
    response = await post(client, {"model": "m", "prompt_id": "nope", "prompt_label": "beta"})
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "prompt_not_found"
    assert "'nope'" in error["message"]
    assert "beta" in error["message"]


async def test_store_down_without_stale_copy_is_502(
    client: httpx.AsyncClient, store: MemoryStore
) -> None:
    store.failure = unavailable()
    response = await post(client, {"model": "m", "prompt_id": "greeting"})
    assert response.status_code == 502
    assert error_of(response)["code"] == "prompt_store_unavailable"


async def test_store_that_raises_anything_else_is_502_without_details(
    client: httpx.AsyncClient, store: MemoryStore
) -> None:
    store.failure = RuntimeError("secret-token-123 leaked?")
    response = await post(client, {"model": "m", "prompt_id": "greeting"})
    assert response.status_code == 502
    assert "secret-token-123" not in response.text


async def test_body_over_the_limit_is_413(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(Settings(default_store="mem", max_body_bytes=100), stores={"mem": store})
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 200}]})
    response = await post(client, big.encode())
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"

    async def chunks() -> Any:  # no content-length: the cap applies while reading
        for _ in range(5):
            yield b"x" * 30

    response = await client.post(URL, content=chunks())
    assert response.status_code == 413
    assert app.requests == []


# --- logging and lifecycle -------------------------------------------------------------------


async def test_one_canonical_log_line_per_managed_request(client: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        await post(
            client,
            {
                "model": "m",
                "prompt_id": "greeting",
                "prompt_variables": {"name": "I", "place": "J"},
            },
            headers={"x-request-id": "req-1"},
        )
    lines = [log for log in logs if log["event"] == "prompt_request"]
    assert len(lines) == 1
    line = lines[0]
    assert {
        k: line[k]
        for k in ("route", "prompt", "version", "cache", "model", "status", "request_id", "store")
    } == {
        "route": URL,
        "prompt": "greeting",
        "version": 1,
        "cache": "miss",
        "model": "m",
        "status": 200,
        "request_id": "req-1",
        "store": "mem",
    }
    assert line["overhead_ms"] >= 0
    assert line["duration_ms"] >= line["overhead_ms"]


async def test_errors_are_logged_with_request_id(client: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        await post(client, b"{", headers={"x-request-id": "req-2"})
    line = next(log for log in logs if log["event"] == "prompt_request")
    assert (line["status"], line["error"], line["request_id"]) == (400, "invalid_request", "req-2")


async def test_client_disconnect_before_body_ends_does_not_call_the_app(
    store: MemoryStore, app: RecordingApp
) -> None:
    middleware = PromptMiddleware(app, Settings(default_store="mem"), stores={"mem": store})
    messages: Iterator[Message] = iter(
        [
            {"type": "http.request", "body": b'{"prompt_id"', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": URL, "headers": []}
    await middleware(scope, receive, send)
    assert (app.requests, sent) == ([], [])


async def test_lifespan_prewarms_before_startup_and_closes_stores(store: MemoryStore) -> None:
    events: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            events.append(f"{message['type']} (store calls: {store.total_calls})")
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    middleware = PromptMiddleware(
        inner,
        Settings(default_store="mem", prewarm=("greeting", "greeting@staging", "nope")),
        stores={"mem": store},
    )
    inbox: Iterator[Message] = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[Message] = []

    async def receive() -> Message:
        return next(inbox)

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware({"type": "lifespan"}, receive, send)
    assert events == ["lifespan.startup (store calls: 3)", "lifespan.shutdown (store calls: 3)"]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert store.closed


async def test_absurdly_deep_json_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    deep = b'{"model": "m", "metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await post(client, deep)
    assert response.status_code == 400
    assert "nested too deeply" in error_of(response)["message"]
    deep_variables = (
        b'{"prompt_id": "greeting", "prompt_variables": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    )
    response = await post(client, deep_variables)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({f"v{i}": i for i in range(11)}, "more than 10 entries"),
        ({"big": "x" * 2000}, "larger than 1000 bytes"),
        ({"deep": [[[[["too deep"]]]]]}, "nested more than 3 levels"),
    ],
)
async def test_limits_on_prompt_variables(
    make_client: ClientFactory, store: MemoryStore, variables: dict[str, Any], fragment: str
) -> None:
    settings = Settings(
        default_store="mem", max_variables=10, max_variables_bytes=1000, max_variables_depth=3
    )
    client = make_client(settings, stores={"mem": store})
    response = await post(client, {"prompt_id": "greeting", "prompt_variables": variables})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("invalid_request", "prompt_variables")
    assert fragment in error["message"]


async def test_a_rendered_prompt_cannot_balloon(
    make_client: ClientFactory, app: RecordingApp
) -> None:
    store = MemoryStore(text_prompt("echo", "{{x}}" * 1000))
    client = make_client(
        Settings(default_store="mem", max_rendered_chars=100_000), stores={"mem": store}
    )
    small = await post(client, {"prompt_id": "echo", "prompt_variables": {"x": "y" * 100}})
    assert small.status_code == 200
    assert len(app.last.json()["messages"][0]["content"]) == 100_000
    huge = await post(client, {"prompt_id": "echo", "prompt_variables": {"x": "y" * 101}})
    assert huge.status_code == 400
    assert "PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS" in error_of(huge)["message"]
