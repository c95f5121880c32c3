"""LangfuseStore against the fake Langfuse (in process and over real HTTP) and against respx.

The fake answers as Langfuse's server does; respx pins the exact bytes that go out (path
encoding, query, Basic auth). Nothing here waits on the clock: a slow Langfuse is a held
response, and the store's deadline is what ends the wait.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx2
import pytest
import respx
from structlog.testing import capture_logs

from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable
from prompt_middleware.prompts import ChatMessage, Placeholder, Prompt, PromptQuery
from prompt_middleware.stores.langfuse import LangfuseStore
from tests.fakes.langfuse import INVALID_JSON, WRONG_SHAPE, FakeLangfuse
from tests.fakes.server import serve_in_background
from tests.stores.kinds import (
    LANGFUSE,
    LANGFUSE_BASE_URL,
    LANGFUSE_PUBLIC_KEY,
    LANGFUSE_SECRET_KEY,
    HttpKind,
)

PUBLIC_KEY = LANGFUSE_PUBLIC_KEY
SECRET_KEY = LANGFUSE_SECRET_KEY
BASE_URL = LANGFUSE_BASE_URL
PROMPTS = f"{BASE_URL}/api/public/v2/prompts/"
make_store = LANGFUSE.make_store


@pytest.fixture
def kind() -> HttpKind:
    return LANGFUSE


def prompt_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "x",
        "version": 1,
        "type": "text",
        "prompt": "Hi",
        "config": {},
        "labels": ["production"],
        "tags": [],
    }
    body.update(fields)
    return body


# --- fetching and mapping ------------------------------------------------------------------


async def test_text_prompt(fake: FakeLangfuse, store: LangfuseStore) -> None:
    config = {"model": "gpt-4o-mini", "temperature": 0.2}
    fake.add_prompt("greeting", "Hello {{name}}", labels=["production"], config=config)

    prompt = await store.get_prompt(PromptQuery("greeting"))

    assert prompt == Prompt(
        name="greeting",
        version=1,
        type="text",
        prompt="Hello {{name}}",
        config=config,
        labels=("production", "latest"),
    )


async def test_chat_prompt_with_placeholders(fake: FakeLangfuse, store: LangfuseStore) -> None:
    fake.add_prompt(
        "support/answer",
        [
            {"role": "system", "content": "You answer for {{company}}."},
            {"type": "placeholder", "name": "history"},
            {"type": "chatmessage", "role": "user", "content": "{{question}}"},
        ],
        labels=["production"],
    )

    prompt = await store.get_prompt(PromptQuery("support/answer"))

    assert prompt.type == "chat"
    assert prompt.prompt == (
        ChatMessage(role="system", content="You answer for {{company}}."),
        Placeholder(name="history"),
        ChatMessage(role="user", content="{{question}}"),
    )
    assert prompt.config == {}


@pytest.mark.parametrize(
    "config",
    [None, {}, {"model": "m", "nested": {"a": [1, None, True]}}, [1, "two"], "text", 3.5, False],
)
async def test_config_of_any_json_shape(
    fake: FakeLangfuse, store: LangfuseStore, config: Any
) -> None:
    fake.add_prompt("p", "x", labels=["production"], config=config)

    prompt = await store.get_prompt(PromptQuery("p"))

    assert prompt.config == ({} if config is None else config)


async def test_version_pinned(fake: FakeLangfuse, store: LangfuseStore) -> None:
    fake.add_prompt("p", "one", labels=["production"])
    fake.add_prompt("p", "two", labels=["production"])

    prompt = await store.get_prompt(PromptQuery("p", version=1))

    assert (prompt.version, prompt.prompt, prompt.labels) == (1, "one", ())
    assert fake.requests[-1].query_string == b"version=1"


async def test_label(fake: FakeLangfuse, store: LangfuseStore) -> None:
    fake.add_prompt("p", "live", labels=["production"])
    fake.add_prompt("p", "trying", labels=["staging"])

    prompt = await store.get_prompt(PromptQuery("p", label="staging"))

    assert (prompt.version, prompt.prompt) == (2, "trying")
    assert fake.requests[-1].query_string == b"label=staging"


async def test_no_label_and_no_version_asks_for_production(
    fake: FakeLangfuse, store: LangfuseStore
) -> None:
    fake.add_prompt("p", "live", labels=["production"])
    fake.add_prompt("p", "newer")  # latest, not production

    prompt = await store.get_prompt(PromptQuery("p"))

    assert prompt.prompt == "live"
    assert fake.requests[-1].query_string == b"label=production"
    assert fake.fetches("p", label="production") == 1


async def test_latest_label(fake: FakeLangfuse, store: LangfuseStore) -> None:
    fake.add_prompt("p", "live", labels=["production"])
    fake.add_prompt("p", "newer")

    prompt = await store.get_prompt(PromptQuery("p", label="latest"))

    assert (prompt.version, prompt.prompt) == (2, "newer")


async def test_prompt_with_only_a_non_production_label(
    fake: FakeLangfuse, store: LangfuseStore
) -> None:
    fake.add_prompt("drafts/idea", "draft", labels=["staging"])

    prompt = await store.get_prompt(PromptQuery("drafts/idea", label="staging"))
    assert prompt.prompt == "draft"

    with pytest.raises(PromptNotFound):
        await store.get_prompt(PromptQuery("drafts/idea"))


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "described"),
    [
        (PromptQuery("support/answer"), "'support/answer' with label 'production'"),
        (PromptQuery("support/answer", label="staging"), "'support/answer' with label 'staging'"),
        (PromptQuery("support/answer", version=7), "'support/answer' version 7"),
        (PromptQuery("missing"), "'missing' with label 'production'"),
    ],
)
async def test_not_found(
    fake: FakeLangfuse, store: LangfuseStore, query: PromptQuery, described: str
) -> None:
    fake.add_prompt("support/answer", "x", labels=["live"])

    with pytest.raises(PromptNotFound) as caught:
        await store.get_prompt(query)

    assert described in caught.value.message
    assert caught.value.param == "prompt_id"
    assert caught.value.status_code == 404
    assert fake.fetch_count == 1  # a 404 is an answer, not a failure: never retried


@pytest.mark.parametrize(
    ("public_key", "secret_key"),
    [(PUBLIC_KEY, "sk-lf-wrong-secret"), ("pk-lf-unknown", SECRET_KEY)],
)
async def test_refused_credentials_are_named_but_never_shown(
    fake: FakeLangfuse, client: httpx2.AsyncClient, public_key: str, secret_key: str
) -> None:
    fake.add_prompt("p", "x", labels=["production"])
    store = make_store(client, public_key=public_key, secret_key=secret_key, retries=3)

    with pytest.raises(PromptStoreUnavailable) as caught, capture_logs() as logs:
        await store.get_prompt(PromptQuery("p"))

    error = caught.value
    assert "refused the credentials" in error.message
    assert "401" in error.message
    assert error.status_code == 502
    shown = error.message + error.to_json().decode() + repr(error) + repr(store) + repr(logs)
    for secret in (public_key, secret_key, PUBLIC_KEY, SECRET_KEY):
        assert secret not in shown
    assert fake.fetch_count == 1


async def test_server_error(fake: FakeLangfuse, store: LangfuseStore) -> None:
    fake.fail_with = 500

    with pytest.raises(
        PromptStoreUnavailable, match=r"Langfuse at langfuse\.test failed with HTTP 500"
    ):
        await store.get_prompt(PromptQuery("p"))


async def test_timeout_with_latency(fake: FakeLangfuse, client: httpx2.AsyncClient) -> None:
    fake.add_prompt("p", "x", labels=["production"])
    fake.latency = 60.0
    store = make_store(client, timeout=0.05)

    with pytest.raises(PromptStoreUnavailable, match="did not answer in time"):
        await store.get_prompt(PromptQuery("p"))


@pytest.mark.parametrize(("body", "broken"), [(INVALID_JSON, "not JSON"), (WRONG_SHAPE, "`type`")])
async def test_broken_body(
    fake: FakeLangfuse, store: LangfuseStore, body: bytes, broken: str
) -> None:
    fake.add_prompt("p", "x", labels=["production"])
    fake.broken_body = body

    with pytest.raises(PromptStoreUnavailable) as caught:
        await store.get_prompt(PromptQuery("p"))

    assert caught.value.message.startswith("Langfuse returned an invalid prompt for 'p' with")
    assert broken in caught.value.message
    assert fake.fetch_count == 1


@pytest.mark.parametrize(
    "body",
    [
        prompt_body(type="image"),
        prompt_body(type="text", prompt=[{"role": "user", "content": "x"}]),
        prompt_body(type="chat", prompt="not a list"),
        prompt_body(type="chat", prompt=[{"role": "user"}]),
        prompt_body(type="chat", prompt=[{"content": "x"}]),
        prompt_body(type="chat", prompt=[{"type": "placeholder"}]),
        prompt_body(type="chat", prompt=[{"type": "image", "role": "user", "content": "x"}]),
        prompt_body(type="chat", prompt=[{"role": "user", "content": ["parts"]}]),
        prompt_body(version="1"),
        prompt_body(labels="production"),
        {"type": "text", "prompt": "x", "version": 1},
        [],
        None,
    ],
)
async def test_wrong_shape(mock: respx.MockRouter, mocked_store: LangfuseStore, body: Any) -> None:
    mock.get(f"{PROMPTS}x", params={"label": "production"}).respond(200, json=body)

    with pytest.raises(PromptStoreUnavailable, match="invalid prompt for 'x'"):
        await mocked_store.get_prompt(PromptQuery("x"))


async def test_folders_work_with_older_servers_routing() -> None:
    # Older Langfuse routes only an encoded slash to the prompt; a raw one misses the route.
    fake = FakeLangfuse(public_key=PUBLIC_KEY, secret_key=SECRET_KEY, legacy_routing=True)
    fake.add_prompt("a/b/c", "deep", labels=["production"])
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.app)) as client:
        prompt = await make_store(client).get_prompt(PromptQuery("a/b/c"))

    assert prompt.prompt == "deep"


# --- what goes out on the wire ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("support/answer", "support%2Fanswer"),
        ("a/b/c", "a%2Fb%2Fc"),
        ("../x", "..%2Fx"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a?b", "a%3Fb"),
        ("#x", "%23x"),
        ("http://evil.test/x", "http%3A%2F%2Fevil.test%2Fx"),
        ("//evil.test", "%2F%2Fevil.test"),
        ("@evil.test", "%40evil.test"),
        ("a b+c&d=e", "a%20b%2Bc%26d%3De"),
        ("100%", "100%25"),
        ("%2F", "%252F"),
        ("naïve", "na%C3%AFve"),
        ("a\\b", "a%5Cb"),
    ],
)
async def test_name_is_one_encoded_path_segment(
    mock: respx.MockRouter, mocked_store: LangfuseStore, name: str, segment: str
) -> None:
    route = mock.get(f"{PROMPTS}{segment}?label=production").respond(
        200, json=prompt_body(name=name)
    )

    prompt = await mocked_store.get_prompt(PromptQuery(name))

    request = route.calls.last.request
    assert request.url.host == "langfuse.test"
    assert request.url.raw_path == f"/api/public/v2/prompts/{segment}?label=production".encode()
    assert prompt.name == name


@pytest.mark.parametrize(
    "name", ["support/answer", "../x", "..", "a?b", "#x", "http://evil.test/x", "100%", "%2F"]
)
async def test_awkward_names_reach_the_right_prompt(
    fake: FakeLangfuse, store: LangfuseStore, name: str
) -> None:
    fake.add_prompt(name, f"prompt {name}", labels=["production"])
    fake.add_prompt("x", "decoy", labels=["production"])

    prompt = await store.get_prompt(PromptQuery(name))

    assert (prompt.name, prompt.prompt) == (name, f"prompt {name}")
    assert fake.fetches(name) == 1


async def test_label_and_version_are_query_parameters(
    mock: respx.MockRouter, mocked_store: LangfuseStore
) -> None:
    by_label = mock.get(f"{PROMPTS}x?label=a%26version%3D2").respond(200, json=prompt_body())
    by_version = mock.get(f"{PROMPTS}x?version=3").respond(200, json=prompt_body(version=3))

    await mocked_store.get_prompt(PromptQuery("x", label="a&version=2"))
    await mocked_store.get_prompt(PromptQuery("x", version=3))

    assert by_label.call_count == by_version.call_count == 1


async def test_basic_auth_header(mock: respx.MockRouter, mocked_store: LangfuseStore) -> None:
    route = mock.get(f"{PROMPTS}x?label=production").respond(200, json=prompt_body())

    await mocked_store.get_prompt(PromptQuery("x"))

    expected = base64.b64encode(f"{PUBLIC_KEY}:{SECRET_KEY}".encode()).decode()
    assert route.calls.last.request.headers["authorization"] == f"Basic {expected}"


async def test_base_url_with_a_path(mock: respx.MockRouter) -> None:
    route = mock.get("https://example.test/langfuse/api/public/v2/prompts/x?label=production")
    route.respond(200, json=prompt_body())
    async with httpx2.AsyncClient() as client:
        store = make_store(client, base_url="https://example.test/langfuse/")
        await store.get_prompt(PromptQuery("x"))


async def test_fetches_are_logged_without_secrets(fake: FakeLangfuse, store: LangfuseStore) -> None:
    fake.add_prompt("p", "x", labels=["production"])

    with capture_logs() as logs:
        await store.get_prompt(PromptQuery("p"))

    (entry,) = [e for e in logs if e["event"] == "langfuse.fetch"]
    assert entry["log_level"] == "debug"
    assert (entry["prompt"], entry["status"], entry["attempt"]) == ("p", 200, 1)
    assert isinstance(entry["duration_ms"], float)
    assert SECRET_KEY not in repr(logs)
    assert PUBLIC_KEY not in repr(logs)


# --- construction and lifecycle --------------------------------------------------------------


async def test_own_client_over_real_http(fake: FakeLangfuse) -> None:
    fake.add_prompt("support/answer", [{"role": "user", "content": "hi"}], labels=["production"])
    async with serve_in_background(fake.app) as base_url:
        store = LangfuseStore(base_url=base_url, public_key=PUBLIC_KEY, secret_key=SECRET_KEY)
        try:
            first = await store.get_prompt(PromptQuery("support/answer"))
            second = await store.get_prompt(PromptQuery("support/answer", version=1))
        finally:
            await store.aclose()

        assert first == second
        assert [r.raw_path for r in fake.requests] == [
            b"/api/public/v2/prompts/support%2Fanswer"
        ] * 2
        with pytest.raises(PromptStoreUnavailable, match="closed"):
            await store.get_prompt(PromptQuery("support/answer"))
