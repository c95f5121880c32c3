"""PromptTransport under the real ``openai`` SDK: the bytes that leave, and what the SDK sees.

The wrapped transport is a strict respx router: a request nobody mocked, or a mocked route
nobody called, fails the test. ``route.calls.last.request`` is what really went out.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest
import respx
import structlog

from prompt_middleware import ModelEntry, Secret, Settings
from prompt_middleware.stores.base import PromptStore
from prompt_middleware.transport import PromptTransport
from tests.fakes.memory import MemoryStore, chat_prompt, text_prompt, unavailable

UPSTREAM = "http://upstream.test/v1"
CHAT_URL = f"{UPSTREAM}/chat/completions"


def completion(content: str = "Hi!", model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def chunk(content: str, finish: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
    }
    return f"data: {json.dumps(event)}\n\n".encode()


def sent(route: respx.Route) -> Any:
    return json.loads(route.calls.last.request.content)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(
        text_prompt("greeting", "Hello {{name}}."),
        chat_prompt(
            "support/answer",
            [("system", "You help with {{product}}."), "messages"],
            config={"model": "gpt-4o", "temperature": 0.2, "notes": "not a parameter"},
        ),
    )


@pytest.fixture
def router() -> Iterator[respx.Router]:
    router = respx.Router(assert_all_called=True, assert_all_mocked=True)
    yield router
    router.assert_all_called()


MakeClient = Callable[..., openai.AsyncOpenAI]


@pytest.fixture
async def make_client(
    router: respx.Router, store: MemoryStore
) -> AsyncIterator[Callable[..., openai.AsyncOpenAI]]:
    """``make_client(settings, base_url=...)``: the SDK over PromptTransport over respx."""
    clients: list[openai.AsyncOpenAI] = []

    def factory(
        settings: Settings | None = None,
        *,
        base_url: str = UPSTREAM,
        stores: dict[str, PromptStore] | None = None,
    ) -> openai.AsyncOpenAI:
        transport = PromptTransport(
            httpx.MockTransport(router.async_handler),
            settings or Settings(default_store="mem"),
            stores={"mem": store} if stores is None else stores,
        )
        client = openai.AsyncOpenAI(
            api_key="sk-test",
            base_url=base_url,
            max_retries=0,
            http_client=sdk_http_client(transport),
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


def sdk_http_client(transport: httpx.AsyncBaseTransport) -> Any:
    # openai >= 3 is typed for httpx2 clients but accepts an httpx client at run time.
    return httpx.AsyncClient(transport=transport)


def http_client_of(client: openai.AsyncOpenAI) -> httpx.AsyncClient:
    """The httpx client under the SDK, to send raw requests through the same transport."""
    return cast(httpx.AsyncClient, client._client)


@pytest.fixture
def client(make_client: MakeClient) -> openai.AsyncOpenAI:
    return make_client()


# --- the rewrite -----------------------------------------------------------------------------


async def test_managed_request_is_rewritten_before_it_leaves(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    route = router.post(CHAT_URL).respond(json=completion("Hello, Ada!"))
    result = await client.chat.completions.create(
        model="mem/gpt-4o-mini",
        messages=[],
        extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Ada"}},
    )
    assert result.choices[0].message.content == "Hello, Ada!"
    request = route.calls.last.request
    assert json.loads(request.content) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello Ada."}],
    }
    assert b"prompt_" not in request.content
    assert request.headers["content-length"] == str(len(request.content))
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["host"] == "upstream.test"


async def test_chat_prompt_takes_client_messages_model_and_parameters(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    route = router.post(CHAT_URL).respond(json=completion(model="gpt-4o"))
    result = await client.chat.completions.create(
        model="gpt-3.5-turbo",
        messages=[{"role": "user", "content": "Where is my parcel?"}],
        temperature=0.9,
        top_p=0.5,
        extra_body={"prompt_id": "support/answer", "prompt_variables": {"product": "Acme"}},
    )
    assert result.model == "gpt-4o"
    assert sent(route) == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You help with Acme."},
            {"role": "user", "content": "Where is my parcel?"},
        ],
        "temperature": 0.2,
        "top_p": 0.5,
    }


async def test_unmanaged_request_passes_byte_for_byte(
    client: openai.AsyncOpenAI, router: respx.Router, store: MemoryStore
) -> None:
    route = router.post(CHAT_URL).respond(json=completion())
    body = b'{ "model" : "gpt-4o", "messages": [], "seed": 12345678901234567890123, "t": 1e-7 }'
    response = await http_client_of(client).post(CHAT_URL, content=body)
    assert route.calls.last.request.content == body
    assert "x-prompt-middleware-overhead-ms" not in response.headers

    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert sent(route) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    assert not any(name.startswith("x-prompt") for name in raw.headers)
    assert store.total_calls == 0


async def test_requests_off_the_chat_routes_are_not_touched(
    client: openai.AsyncOpenAI, router: respx.Router, store: MemoryStore
) -> None:
    models = router.get(f"{UPSTREAM}/models").respond(
        json={
            "object": "list",
            "data": [{"id": "m", "object": "model", "created": 1, "owned_by": "o"}],
        }
    )
    embeddings = router.post(f"{UPSTREAM}/embeddings").respond(
        json={
            "object": "list",
            "model": "mem/e",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
    )
    assert [m.id async for m in client.models.list()] == ["m"]
    await client.embeddings.create(
        model="mem/e", input="hi", encoding_format="float", extra_body={"prompt_id": "greeting"}
    )
    assert sent(embeddings)["prompt_id"] == "greeting"
    assert models.called
    assert store.total_calls == 0


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", CHAT_URL),  # a matched path, another method
        ("POST", f"{UPSTREAM}/xchat/completions"),  # a suffix, not a path segment
        ("POST", f"{UPSTREAM}/chat/completions/extra"),
    ],
)
async def test_near_misses_pass_without_being_read(
    client: openai.AsyncOpenAI, router: respx.Router, method: str, url: str
) -> None:
    route = router.route(method=method, url=url).respond(204)
    body = b"not json at all"
    response = await http_client_of(client).request(method, url, content=body)
    assert response.status_code == 204
    assert route.calls.last.request.content == body


async def test_path_suffix_matches_any_base_url(
    make_client: MakeClient, router: respx.Router
) -> None:
    # Azure-style: the SDK posts to {base_url}/chat/completions under a deployment path.
    base = "http://upstream.test/openai/deployments/d1"
    route = router.post(f"{base}/chat/completions", params={"api-version": "2024-10-21"})
    route.respond(json=completion())
    client = make_client(base_url=base)
    await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[],
        extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Bo"}},
        extra_query={"api-version": "2024-10-21"},
    )
    assert sent(route)["messages"] == [{"role": "user", "content": "Hello Bo."}]


async def test_custom_routes_are_matched_by_suffix(
    make_client: MakeClient, router: respx.Router
) -> None:
    route = router.post("http://upstream.test/llm/chat").respond(json=completion())
    client = make_client(Settings(default_store="mem", routes=("llm/chat",)))
    response = await http_client_of(client).post(
        "http://upstream.test/llm/chat",
        json={"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "Cy"}},
    )
    assert response.headers["x-prompt-name"] == "greeting"
    assert sent(route)["messages"][0]["content"] == "Hello Cy."


async def test_model_list_entry_sends_to_its_own_upstream_with_its_key(
    make_client: MakeClient, router: respx.Router
) -> None:
    entry = ModelEntry(
        model_name="support-bot",
        model="mem/openai/gpt-4o-mini",
        prompt_id="greeting",
        api_base="http://entry.test/api/v1/",
        api_key=Secret("sk-entry"),
        params={"seed": 7},
    )
    route = router.post(
        "http://entry.test/api/v1/chat/completions", params={"tenant": "t1"}
    ).respond(json=completion())
    client = make_client(Settings(default_store="mem", model_list=(entry,)))
    await client.chat.completions.create(
        model="support-bot",
        messages=[],
        extra_body={"prompt_variables": {"name": "Di"}},
        extra_query={"tenant": "t1"},
    )
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer sk-entry"
    assert request.headers["host"] == "entry.test"
    assert json.loads(request.content) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello Di."}],
        "seed": 7,
    }


async def test_streamed_request_body_is_read_and_rewritten(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    route = router.post(CHAT_URL).respond(json=completion())

    async def body(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    http = http_client_of(client)
    await http.post(
        CHAT_URL,
        content=body(b'{"model":"m","prompt_id":"greeting",', b'"prompt_variables":{"name":"Ed"}}'),
    )
    request = route.calls.last.request
    assert json.loads(request.content)["messages"][0]["content"] == "Hello Ed."
    assert "transfer-encoding" not in request.headers
    assert request.headers["content-length"] == str(len(request.content))

    await http.post(CHAT_URL, content=body(b'{"model": "m",', b' "messages": []}'))
    assert route.calls.last.request.content == b'{"model": "m", "messages": []}'


# --- responses -----------------------------------------------------------------------------


async def test_prompt_headers_are_visible_through_the_raw_response(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    router.post(CHAT_URL).respond(json=completion(), headers={"x-upstream": "yes"})
    raw = await client.chat.completions.with_raw_response.create(
        model="mem/gpt-4o-mini",
        messages=[],
        extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Flo"}},
    )
    assert raw.headers["x-prompt-name"] == "greeting"
    assert raw.headers["x-prompt-version"] == "1"
    assert raw.headers["x-prompt-store"] == "mem"
    assert raw.headers["x-prompt-cache"] == "miss"
    assert float(raw.headers["x-prompt-middleware-overhead-ms"]) >= 0
    assert raw.headers["x-upstream"] == "yes"
    assert raw.parse().choices[0].message.content == "Hi!"


async def test_the_cache_serves_repeated_calls(
    client: openai.AsyncOpenAI, router: respx.Router, store: MemoryStore
) -> None:
    router.post(CHAT_URL).respond(json=completion())
    statuses = []
    for _ in range(3):
        raw = await client.chat.completions.with_raw_response.create(
            model="mem/gpt-4o-mini",
            messages=[],
            extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Gil"}},
        )
        statuses.append(raw.headers["x-prompt-cache"])
    assert statuses == ["miss", "hit", "hit"]
    assert store.total_calls == 1


async def test_streaming_answer_reaches_the_sdk_chunk_by_chunk(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    # The upstream holds its last chunk back until the SDK has yielded the first: a
    # transport that buffered the answer would never get there (the timeout fails the test).
    first_seen = asyncio.Event()

    async def sse() -> AsyncIterator[bytes]:
        yield chunk("Hel")
        await first_seen.wait()
        yield chunk("lo", finish="stop")
        yield b"data: [DONE]\n\n"

    route = router.post(CHAT_URL).mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse()
        )
    )
    pieces: list[str | None] = []
    async with asyncio.timeout(10):
        stream = await client.chat.completions.create(
            model="mem/gpt-4o-mini",
            messages=[],
            stream=True,
            extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Hal"}},
        )
        async for event in stream:
            pieces.append(event.choices[0].delta.content)
            first_seen.set()
    assert pieces == ["Hel", "lo"]
    body = sent(route)
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "Hello Hal."}]


# --- errors ----------------------------------------------------------------------------------


def error_body(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert exc.response.headers["content-type"] == "application/json"
    assert exc.body == body["error"]
    error: dict[str, Any] = body["error"]
    return error


async def test_unknown_prompt_is_the_sdks_not_found_error(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(
            model="mem/gpt-4o-mini", messages=[], extra_body={"prompt_id": "nope"}
        )
    error = error_body(caught.value)
    assert (error["code"], error["param"]) == ("prompt_not_found", "prompt_id")
    assert caught.value.code == "prompt_not_found"
    assert "nope" in error["message"]


async def test_missing_variables_in_strict_mode_are_a_bad_request(
    make_client: MakeClient,
) -> None:
    client = make_client(Settings(default_store="mem", strict_variables=True))
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[], extra_body={"prompt_id": "greeting"}
        )
    error = error_body(caught.value)
    assert error["code"] == "invalid_prompt_request"
    assert "name" in error["message"]


@pytest.mark.parametrize(
    ("extra", "code", "param"),
    [
        ({"prompt_id": "greeting", "prompt_variables": "x"}, "invalid_request", "prompt_variables"),
        (
            {"prompt_id": "greeting", "prompt_label": "production", "prompt_version": 1},
            "invalid_prompt_request",
            "prompt_version",
        ),
    ],
)
async def test_invalid_prompt_fields_are_a_bad_request(
    client: openai.AsyncOpenAI, extra: dict[str, Any], code: str, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="m", messages=[], extra_body=extra)
    error = error_body(caught.value)
    assert (error["code"], error["param"]) == (code, param)


async def test_body_that_is_not_json_is_answered_not_raised(client: openai.AsyncOpenAI) -> None:
    response = await http_client_of(client).post(CHAT_URL, content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


async def test_store_failure_is_a_502_from_the_sdk(
    client: openai.AsyncOpenAI, store: MemoryStore
) -> None:
    store.failure = unavailable()
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(
            model="mem/m", messages=[], extra_body={"prompt_id": "greeting"}
        )
    assert caught.value.status_code == 502
    assert error_body(caught.value)["code"] == "prompt_store_unavailable"


async def test_body_over_the_limit_is_a_413(make_client: MakeClient) -> None:
    client = make_client(Settings(default_store="mem", max_body_bytes=64))
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x" * 100}]
        )
    assert caught.value.status_code == 413
    assert error_body(caught.value)["code"] == "request_too_large"

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b" " * 16

    response = await http_client_of(client).post(CHAT_URL, content=endless())
    assert response.status_code == 413


async def test_an_engine_bug_is_a_500_json_error(
    client: openai.AsyncOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = cast(PromptTransport, http_client_of(client)._transport)

    async def broken(body: bytes) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(transport.engine, "rewrite", broken)
    with (
        structlog.testing.capture_logs() as logs,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        await client.chat.completions.create(model="m", messages=[])
    assert error_body(caught.value)["code"] == "internal_error"
    assert [log["event"] for log in logs] == ["prompt_request_failed"]


async def test_upstream_failures_propagate_for_the_sdk_to_handle(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    router.post(CHAT_URL).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(
            model="mem/m",
            messages=[],
            extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "I"}},
        )


# --- logs and lifetime -----------------------------------------------------------------------


async def test_one_canonical_log_line_per_request(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    router.post(CHAT_URL).respond(201, json=completion())
    with structlog.testing.capture_logs() as logs:
        await client.chat.completions.create(
            model="mem/gpt-4o-mini",
            messages=[],
            extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Jo"}},
            extra_headers={"x-request-id": "req-1"},
        )
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(
                model="m", messages=[], extra_body={"prompt_id": "nope"}
            )
    first, second = (log for log in logs if log["event"] == "prompt_request")
    assert first["route"] == "/v1/chat/completions"
    assert (first["request_id"], first["status"], first["model"]) == ("req-1", 201, "gpt-4o-mini")
    assert (first["prompt"], first["version"], first["store"], first["cache"]) == (
        "greeting",
        1,
        "mem",
        "miss",
    )
    assert first["overhead_ms"] <= first["duration_ms"]
    assert (second["status"], second["error"]) == (404, "prompt_not_found")


class RecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError("not called")

    async def aclose(self) -> None:
        self.closed = True


async def test_aclose_closes_the_stores_and_the_wrapped_transport(store: MemoryStore) -> None:
    inner = RecordingTransport()
    async with PromptTransport(inner, Settings(default_store="mem"), stores={"mem": store}):
        pass
    assert inner.closed
    assert store.closed


# --- the README's usage: settings from the environment ------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(("PROMPT_MIDDLEWARE_", "LANGFUSE_", "OPENAI_")):
            monkeypatch.delenv(name)
    (tmp_path / "support").mkdir()
    (tmp_path / "support" / "answer.yaml").write_text(
        "name: support/answer\n"
        "type: chat\n"
        "prompt:\n"
        "  - role: system\n"
        "    content: You answer questions about {{product}}.\n"
        "  - type: placeholder\n"
        "    name: messages\n"
        "config:\n"
        "  model: gpt-4o\n"
        "  temperature: 0.1\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PROMPT_MIDDLEWARE_PROMPTS_DIR", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", UPSTREAM)
    return tmp_path


@pytest.mark.usefixtures("environment")
async def test_readme_usage_reads_its_settings_from_the_environment() -> None:
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as upstream:
        route = upstream.post(CHAT_URL).respond(json=completion("Yes.", model="gpt-4o"))
        client = openai.AsyncOpenAI(http_client=sdk_http_client(PromptTransport()), max_retries=0)
        async with client:
            result = await client.chat.completions.create(
                model="file/gpt-4o-mini",
                messages=[{"role": "user", "content": "Does it float?"}],
                extra_body={"prompt_id": "support/answer", "prompt_variables": {"product": "Ark"}},
            )
    assert result.choices[0].message.content == "Yes."
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer sk-env"
    assert json.loads(request.content) == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You answer questions about Ark."},
            {"role": "user", "content": "Does it float?"},
        ],
        "temperature": 0.1,
    }
