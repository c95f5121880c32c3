"""The rules the hot-path shortcuts must keep: client messages copied as sent, plans and
remembered resolutions that follow the store, bounded memos, the cache's fresh-only read, the
variables depth gate, and a log line built only when it is logged."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest
import structlog

import prompt_middleware.engine
import prompt_middleware.handoff
import prompt_middleware.report
from prompt_middleware import PromptMiddleware, Settings
from prompt_middleware.cache import CachePolicy, CacheStatus, PromptCache
from prompt_middleware.engine import RewriteEngine, RewriteResult
from prompt_middleware.engine.resolve import MAX_REMEMBERED as _MAX_REMEMBERED
from prompt_middleware.observe import FetchOutcome
from prompt_middleware.prompts import Prompt, PromptQuery
from prompt_middleware.report import report_request
from prompt_middleware.request import _MAX_CLASSIFIED, _classify, decode_body, extension_fields
from tests.conftest import ClientFactory, RecordingApp
from tests.fakes.memory import MemoryStore, chat_prompt, text_prompt

URL = "/v1/chat/completions"
SYSTEM = b'{"role":"system","content":"Be brief."}'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingObserver:
    """An :class:`~prompt_middleware.observe.Observer` that keeps every call."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, int, str | None, float]] = []
        self.fetches: list[tuple[str, FetchOutcome, float]] = []

    def request(self, route: str, status: int, cache: str | None, overhead_seconds: float) -> None:
        self.requests.append((route, status, cache, overhead_seconds))

    def store_fetch(self, store: str, outcome: FetchOutcome, seconds: float) -> None:
        self.fetches.append((store, outcome, seconds))


class EveryNameStore:
    """Has a prompt under every name, whose text is its name: for floods of distinct names."""

    def __init__(self) -> None:
        self.total_calls = 0

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        self.total_calls += 1
        return text_prompt(query.name, query.name)

    async def aclose(self) -> None:
        pass


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore(
        chat_prompt("chat", [("system", "Be brief."), "messages"]),
        chat_prompt("middle", [("system", "Be brief."), "messages", ("user", "end")]),
        chat_prompt("plain", [("system", "Be brief."), ("user", "Go.")]),
        text_prompt("greeting", "v1 {{name}}", config={"model": "gpt-4o"}),
        text_prompt("greeting", "v2 {{name}}", version=2, labels=("staging",)),
        text_prompt("echo", "{{a}}"),
    )


@pytest.fixture
def client(make_client: ClientFactory, store: MemoryStore) -> httpx.AsyncClient:
    return make_client(Settings(default_store="mem"), stores={"mem": store})


EngineFactory = Callable[..., RewriteEngine]


@pytest.fixture
async def make_engine(store: MemoryStore) -> AsyncIterator[EngineFactory]:
    """``make_engine(settings, stores=..., cache=...)``: an engine closed after the test."""
    engines: list[RewriteEngine] = []

    def factory(
        settings: Settings | None = None,
        *,
        stores: dict[str, Any] | None = None,
        cache: PromptCache | None = None,
    ) -> RewriteEngine:
        engine = RewriteEngine(
            settings or Settings(default_store="mem"),
            stores=stores if stores is not None else {"mem": store},
            cache=cache,
        )
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        await engine.aclose()


@pytest.fixture
def structlog_config() -> Iterator[None]:
    """Put back whatever structlog configuration the test changes."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def post(client: httpx.AsyncClient, body: bytes) -> Any:
    return client.post(URL, content=body, headers={"content-type": "application/json"})


async def managed(engine: RewriteEngine, body: Any) -> RewriteResult:
    result = await engine.rewrite(json.dumps(body).encode())
    assert result is not None
    return result


def header(result: RewriteResult, name: bytes) -> bytes:
    return dict(result.headers)[name]


def sent_messages(app: RecordingApp) -> Any:
    # The standard library's decoder: proof that the copied bytes are valid JSON on their own.
    return json.loads(app.last.body)["messages"]


def error_body(message: str, param: str, code: str) -> bytes:
    return json.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }
        },
        separators=(",", ":"),
    ).encode()


# --- 1. client messages are copied as sent -------------------------------------------------

ODD_SPACING = b' {"role":"user","content":"hi"} ,\n {"role":"user","content":"x"} '


async def test_client_messages_keep_their_bytes_inside_the_prompt_messages(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    body = b'{"model":"m","prompt_id":"chat","messages": [' + ODD_SPACING + b"]}"
    response = await post(client, body)
    assert response.status_code == 200
    assert app.last.body == b'{"model":"m","messages":[' + SYSTEM + b"," + ODD_SPACING + b"]}"
    assert sent_messages(app) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "x"},
    ]


@pytest.mark.parametrize("array", [b"[]", b"[ \n ]", b"[\t\r]"], ids=["empty", "blank", "tabs"])
async def test_an_empty_client_array_adds_nothing_and_no_comma(
    client: httpx.AsyncClient, app: RecordingApp, array: bytes
) -> None:
    response = await post(client, b'{"model":"m","prompt_id":"chat","messages": ' + array + b"}")
    assert response.status_code == 200
    assert app.last.body == b'{"model":"m","messages":[' + SYSTEM + b"]}"
    assert sent_messages(app) == [{"role": "system", "content": "Be brief."}]


async def test_null_messages_are_absent_so_the_placeholder_is_unfilled(
    client: httpx.AsyncClient, app: RecordingApp
) -> None:
    response = await post(client, b'{"model":"m","prompt_id":"chat","messages": null}')
    assert response.status_code == 400
    assert response.content == error_body(
        "Prompt 'chat' has unfilled placeholders ['messages']: pass each as a list of messages "
        "in prompt_variables (an empty list removes it).",
        "prompt_variables",
        "invalid_prompt_request",
    )
    assert app.requests == []


@pytest.mark.parametrize("value", [b'"hi"', b'{"a":1}', b"1", b"true"])
async def test_messages_that_are_not_an_array_are_a_400(
    client: httpx.AsyncClient, app: RecordingApp, value: bytes
) -> None:
    response = await post(client, b'{"model":"m","prompt_id":"chat","messages": ' + value + b"}")
    assert response.status_code == 400
    assert response.content == error_body(
        "'messages' must be a JSON array.", "messages", "invalid_request"
    )
    assert app.requests == []


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (
            b"[" + ODD_SPACING + b"]",
            [{"role": "user", "content": "hi"}, {"role": "user", "content": "x"}],
        ),
        (b"[ ]", []),
    ],
    ids=["two", "blank"],
)
async def test_a_placeholder_in_the_middle_keeps_the_order(
    client: httpx.AsyncClient, app: RecordingApp, array: bytes, expected: list[Any]
) -> None:
    response = await post(client, b'{"model":"m","prompt_id":"middle","messages":' + array + b"}")
    assert response.status_code == 200
    assert sent_messages(app) == [
        {"role": "system", "content": "Be brief."},
        *expected,
        {"role": "user", "content": "end"},
    ]


async def test_append_mode_adds_the_client_messages_after_a_prompt_without_placeholder(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(
        Settings(default_store="mem", client_messages="append"), stores={"mem": store}
    )
    body = b'{"model":"m","prompt_id":"plain","messages": [' + ODD_SPACING + b"]}"
    assert (await post(client, body)).status_code == 200
    assert app.last.body == (
        b'{"model":"m","messages":['
        + SYSTEM
        + b',{"role":"user","content":"Go."},'
        + ODD_SPACING
        + b"]}"
    )
    assert sent_messages(app) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Go."},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "x"},
    ]
    # A placeholder the client messages filled does not get them a second time.
    await post(
        client, b'{"model":"m","prompt_id":"chat","messages":[{"role":"user","content":"a"}]}'
    )
    assert sent_messages(app) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "a"},
    ]
    for empty in (b"[ \n ]", b"null"):
        await post(client, b'{"model":"m","prompt_id":"plain","messages":' + empty + b"}")
        assert sent_messages(app) == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Go."},
        ]


# --- 2. plans follow new prompt versions ---------------------------------------------------

NEW_GREETING = text_prompt(
    "greeting", "v3 {{name}}", version=3, config={"model": "openai/gpt-4.1", "temperature": 0.7}
)


async def test_an_invalidated_prompt_is_rendered_from_its_new_version(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    engine = make_engine()
    body = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "A"}}
    old = await managed(engine, body)
    assert msgspec.json.decode(old.body) == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "v1 A"}],
    }
    assert header(old, b"x-prompt-version") == b"1"

    store.prompts = [NEW_GREETING]
    engine.cache.invalidate(("mem", PromptQuery("greeting", label="production")))
    new = await managed(engine, body)
    assert msgspec.json.decode(new.body) == {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "v3 A"}],
        "temperature": 0.7,
    }
    assert list(new.headers) == [
        (b"x-prompt-name", b"greeting"),
        (b"x-prompt-version", b"3"),
        (b"x-prompt-store", b"mem"),
        (b"x-prompt-cache", b"miss"),
    ]


async def test_an_expired_prompt_is_refreshed_and_then_rendered_from_its_new_version(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    # TTL 0: every entry is expired as soon as it is stored (the clock never goes back), so
    # each request is served stale while one background refresh runs.
    engine = make_engine(Settings(default_store="mem", cache_ttl_seconds=0))
    body = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "B"}}
    assert header(await managed(engine, body), b"x-prompt-version") == b"1"

    store.prompts = [NEW_GREETING]
    stale = await managed(engine, body)  # served at once while the refresh runs
    assert (header(stale, b"x-prompt-version"), header(stale, b"x-prompt-cache")) == (
        b"1",
        b"stale",
    )
    assert msgspec.json.decode(stale.body)["messages"] == [{"role": "user", "content": "v1 B"}]
    await engine.cache.drain()

    refreshed = await managed(engine, body)
    assert list(refreshed.headers) == [
        (b"x-prompt-name", b"greeting"),
        (b"x-prompt-version", b"3"),
        (b"x-prompt-store", b"mem"),
        (b"x-prompt-cache", b"stale"),
    ]
    assert msgspec.json.decode(refreshed.body) == {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "v3 B"}],
        "temperature": 0.7,
    }
    await engine.cache.drain()
    assert store.total_calls == 3


async def test_an_injected_cache_is_the_one_the_engine_uses(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    clock = Clock()
    cache = PromptCache(clock=clock)
    engine = make_engine(cache=cache)
    body = {"model": "m", "prompt_id": "greeting"}
    await managed(engine, body)
    assert ("mem", PromptQuery("greeting", label="production")) in cache
    clock.now += 61
    assert header(await managed(engine, body), b"x-prompt-cache") == b"stale"


async def test_only_a_request_that_waited_for_the_store_says_so(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    # An expired prompt served while it is refreshed in the background did not wait: the
    # forwarder need not look for a departed client at once (a store outage serves every
    # request this way).
    clock = Clock()
    engine = make_engine(cache=PromptCache(clock=clock))
    body = {"model": "m", "prompt_id": "greeting"}
    miss = await managed(engine, body)
    hit = await managed(engine, body)
    clock.now += 61
    stale = await managed(engine, body)
    await engine.cache.drain()
    assert [header(r, b"x-prompt-cache") for r in (miss, hit, stale)] == [b"miss", b"hit", b"stale"]
    assert [r.waited for r in (miss, hit, stale)] == [True, False, False]
    assert store.total_calls == 2  # the stale one started the refresh


async def test_serve_stale_answers_only_what_needs_no_wait(store: MemoryStore) -> None:
    clock = Clock()
    cache = PromptCache(clock=clock)
    key = ("mem", PromptQuery("greeting", label="production"))
    calls: list[int] = []

    async def fetch() -> Prompt:
        calls.append(1)
        return await store.get_prompt(PromptQuery("greeting", label="production"))

    background = CachePolicy(ttl_seconds=60, max_stale_seconds=100)
    waiting = CachePolicy(ttl_seconds=60, max_stale_seconds=100, revalidate_in_background=False)
    assert cache.serve_stale(key, fetch, background) is None  # nothing cached
    prompt, _ = await cache.get(key, fetch, background)
    clock.now += 61
    assert cache.serve_stale(key, fetch, waiting) is None  # this policy fetches first
    assert cache.serve_stale(key, fetch, background) is prompt
    assert cache.serve_stale(key, fetch, background) is prompt  # one refresh in flight
    await cache.drain()
    assert len(calls) == 2
    clock.now += 61 + 101
    assert cache.serve_stale(key, fetch, background) is None  # too stale to serve


# --- 3. resolution is remembered but stays correct -----------------------------------------


async def test_label_and_version_of_each_request_pick_the_query(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    engine = make_engine()
    base = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "C"}}
    cases: list[tuple[dict[str, Any], bytes, str, bytes]] = [
        ({}, b"1", "v1 C", b"miss"),
        ({"prompt_label": "staging"}, b"2", "v2 C", b"miss"),
        ({"prompt_version": 1}, b"1", "v1 C", b"miss"),
        ({"prompt_version": "2"}, b"2", "v2 C", b"miss"),
        ({}, b"1", "v1 C", b"hit"),
        ({"prompt_version": 2}, b"2", "v2 C", b"hit"),
        ({"prompt_label": "production"}, b"1", "v1 C", b"hit"),
        ({"prompt_label": "staging"}, b"2", "v2 C", b"hit"),
        ({"prompt_version": 1}, b"1", "v1 C", b"hit"),
    ]
    for pinned, version, content, cache in cases:
        result = await managed(engine, {**base, **pinned})
        seen = (header(result, b"x-prompt-version"), header(result, b"x-prompt-cache"))
        assert seen == (version, cache), pinned
        assert msgspec.json.decode(result.body)["messages"] == [
            {"role": "user", "content": content}
        ]
    assert store.calls == Counter(
        {
            PromptQuery("greeting", label="production"): 1,
            PromptQuery("greeting", label="staging"): 1,
            PromptQuery("greeting", version=1): 1,
            PromptQuery("greeting", version=2): 1,
        }
    )
    assert store.total_calls == 4


async def test_remembered_targets_stay_bounded_and_right(make_engine: EngineFactory) -> None:
    store = EveryNameStore()
    engine = make_engine(stores={"mem": store})
    sizes = []
    for i in range(_MAX_REMEMBERED + 100):
        result = await managed(engine, {"model": "m", "prompt_id": f"p{i}"})
        assert result.prompt is not None
        assert result.prompt.name == f"p{i}"
        # private: the memo under test has no public view
        sizes.append(engine._resolver._remembered_target.cache_info().currsize)
    assert max(sizes) == _MAX_REMEMBERED
    assert store.total_calls == _MAX_REMEMBERED + 100
    first = await managed(engine, {"model": "m", "prompt_id": "p0"})
    assert msgspec.json.decode(first.body)["messages"] == [{"role": "user", "content": "p0"}]


async def test_plans_stay_bounded_by_the_cache_size(make_engine: EngineFactory) -> None:
    # A plan is kept in the cache entry of its prompt: no more plans than cache entries.
    store = EveryNameStore()
    engine = make_engine(Settings(default_store="mem", cache_max_entries=4), stores={"mem": store})
    sizes = []
    for i in range(100):
        result = await managed(engine, {"model": "m", "prompt_id": f"p{i}"})
        assert msgspec.json.decode(result.body)["messages"] == [
            {"role": "user", "content": f"p{i}"}
        ]
        sizes.append(len(engine.cache))
    assert max(sizes) == 4


async def test_remembered_model_splits_stay_bounded_and_right(make_engine: EngineFactory) -> None:
    engine = make_engine()
    sizes = []
    for i in range(_MAX_REMEMBERED + 100):
        result = await engine.rewrite(b'{"model":"mem/m%d"}' % i)
        assert result is not None
        assert (result.body, result.model) == (b'{"model":"m%d"}' % i, f"m{i}")
        # private: the memo under test has no public view
        sizes.append(engine._resolver._store_prefix_of.cache_info().currsize)
    assert max(sizes) == _MAX_REMEMBERED
    again = await engine.rewrite(b'{"model":"mem/m0"}')
    assert again is not None
    assert again.body == b'{"model":"m0"}'


# --- 4. request.extension_fields -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"prompt_version":2,"model":"m","prompt_id":"p","messages":[],'
            b'"prompt_variables":{},"prompt_label":"l","prompt_other":1}',
            (("prompt_version", "prompt_id", "prompt_variables", "prompt_label"), ()),
        ),
        (
            b'{"model":"m","langfuse_public_key":"k","humanloop_x":1,"prompt_id":"p",'
            b'"my_langfuse_y":1,"Langfuse_z":1,"langfuse_secret_key":"s"}',
            (("prompt_id",), ("langfuse_public_key", "humanloop_x", "langfuse_secret_key")),
        ),
        (b'{"model":"m","messages":[],"temperature":0}', ((), ())),
        (b"{}", ((), ())),
    ],
    ids=["prompt", "prefixed", "none", "empty"],
)
def test_extension_fields_are_classified(
    body: bytes, expected: tuple[tuple[str, ...], tuple[str, ...]]
) -> None:
    fields = decode_body(body)
    assert extension_fields(fields) == expected
    assert extension_fields(fields) == expected  # the remembered answer is the same


def test_extension_field_classification_memo_is_bounded() -> None:
    sizes = []
    for i in range(_MAX_CLASSIFIED + 100):
        fields = {"model": msgspec.Raw(b'"m"'), f"field_{i}": msgspec.Raw(b"1")}
        assert extension_fields(fields) == ((), ())
        sizes.append(_classify.cache_info().currsize)
    assert max(sizes) == _MAX_CLASSIFIED
    assert extension_fields(decode_body(b'{"prompt_id":"p","humanloop_a":1}')) == (
        ("prompt_id",),
        ("humanloop_a",),
    )


# --- 5. PromptCache.get_fresh ----------------------------------------------------------------

POLICY = CachePolicy(ttl_seconds=60, max_stale_seconds=3600)
LABEL = PromptQuery("greeting", label="production")
PINNED = PromptQuery("greeting", version=1)


async def fill(cache: PromptCache, store: MemoryStore, query: PromptQuery) -> Prompt:
    prompt, status = await cache.get(("mem", query), lambda: store.get_prompt(query), POLICY)
    assert status is CacheStatus.MISS
    return prompt


async def test_get_fresh_answers_only_unexpired_entries_and_never_fetches(
    store: MemoryStore,
) -> None:
    clock = Clock()
    cache = PromptCache(clock=clock)
    assert cache.get_fresh(("mem", LABEL)) is None
    prompt = await fill(cache, store, LABEL)
    pinned = await fill(cache, store, PINNED)
    assert store.total_calls == 2

    clock.now += 59.999
    assert cache.get_fresh(("mem", LABEL)) is prompt
    clock.now += 0.001  # now exactly the expiry: what get() would serve as stale
    assert cache.get_fresh(("mem", LABEL)) is None
    clock.now += 10**6
    assert cache.get_fresh(("mem", LABEL)) is None
    assert cache.get_fresh(("mem", PINNED)) is pinned  # a pinned version never expires
    assert cache.get_fresh(("other", LABEL)) is None

    await cache.drain()  # would run any fetch get_fresh had started
    assert store.total_calls == 2
    assert ("mem", LABEL) in cache  # an expired entry stays for get() to serve stale


async def test_get_fresh_counts_as_a_use_for_the_lru(store: MemoryStore) -> None:
    cache = PromptCache(max_entries=2, clock=Clock())
    await fill(cache, store, LABEL)
    await fill(cache, store, PINNED)
    assert cache.get_fresh(("mem", LABEL)) is not None
    await fill(cache, store, PromptQuery("greeting", version=2))
    assert ("mem", LABEL) in cache
    assert ("mem", PINNED) not in cache


# --- 6. the variables depth gate -------------------------------------------------------------


async def test_variables_deeper_than_the_limit_are_refused(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(
        Settings(default_store="mem", max_variables_depth=2), stores={"mem": store}
    )
    too_deep = await post(client, b'{"prompt_id":"echo","prompt_variables":{"a":[[1]]}}')
    assert too_deep.status_code == 400
    assert too_deep.content == error_body(
        "'prompt_variables' is nested more than 2 levels deep "
        "(PROMPT_MIDDLEWARE_MAX_VARIABLES_DEPTH).",
        "prompt_variables",
        "invalid_request",
    )
    assert app.requests == []

    at_limit = await post(client, b'{"prompt_id":"echo","prompt_variables":{"a":[1]}}')
    assert at_limit.status_code == 200
    assert sent_messages(app) == [{"role": "user", "content": "[1]"}]


async def test_flat_long_variables_skip_the_depth_walk(
    client: httpx.AsyncClient, app: RecordingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_walk(value: Any, limit: int) -> int:
        raise AssertionError("flat variables must not be walked")

    monkeypatch.setattr(prompt_middleware.engine.variables, "_depth", no_walk)
    variables = {"a": "x" * 100, "b": "y"}
    body = json.dumps({"prompt_id": "echo", "prompt_variables": variables}).encode()
    assert len(json.dumps(variables)) > 66  # past the length gate: 2 * (32 + 1) bytes
    response = await post(client, body)
    assert response.status_code == 200
    assert sent_messages(app) == [{"role": "user", "content": "x" * 100}]


async def test_brackets_inside_strings_are_not_nesting(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(
        Settings(default_store="mem", max_variables_depth=2), stores={"mem": store}
    )
    text = "[{" * 50 + "]}" * 3
    body = json.dumps({"prompt_id": "echo", "prompt_variables": {"a": text}}).encode()
    response = await post(client, body)
    assert response.status_code == 200
    assert sent_messages(app) == [{"role": "user", "content": text}]


# --- 7. a log line is built only when it is logged -------------------------------------------


def report(result: RewriteResult, status: int, observer: RecordingObserver) -> None:
    """The canonical report of a request that spent 0.25 s in the middleware, 0.5 s in all."""
    report_request(
        route=URL,
        request_id=None,
        result=result,
        status=status,
        overhead_seconds=0.25,
        duration_seconds=0.5,
        observer=observer,
    )


async def test_with_info_off_nothing_is_built_but_the_observer_is_called(
    make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch, structlog_config: None
) -> None:
    def no_request_id() -> str:
        raise AssertionError("a request id was made for a line that is not logged")

    result = await managed(make_engine(), {"model": "m", "prompt_id": "greeting"})
    monkeypatch.setattr(prompt_middleware.report, "_new_request_id", no_request_id)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    observer = RecordingObserver()
    with structlog.testing.capture_logs() as logs:
        report(result, 200, observer)
    assert logs == []
    assert observer.requests == [(URL, 200, "miss", 0.25)]
    assert observer.fetches == []


async def test_with_info_on_the_line_names_the_prompt(
    make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine()
    body = {"model": "m", "prompt_id": "greeting", "prompt_label": "staging"}
    await managed(engine, body)
    result = await managed(engine, body)
    monkeypatch.setattr(prompt_middleware.report, "_new_request_id", lambda: "made-here")
    observer = RecordingObserver()
    with structlog.testing.capture_logs() as logs:
        report(result, 201, observer)
    assert logs == [
        {
            "event": "prompt_request",
            "log_level": "info",
            "route": URL,
            "request_id": "made-here",
            "model": "m",
            "status": 201,
            "overhead_ms": 250.0,
            "duration_ms": 500.0,
            "prompt": "greeting",
            "version": 2,
            "store": "mem",
            "cache": "hit",
        }
    ]
    assert observer.requests == [(URL, 201, "hit", 0.25)]


async def test_the_forwarder_is_told_when_the_rewrite_waited_for_the_store(
    store: MemoryStore,
) -> None:
    # A miss waited for the store (the client may have left meanwhile); a hit did not.
    seen: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        seen.append(scope.get(prompt_middleware.handoff.WAITED_SCOPE_KEY))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    middleware = PromptMiddleware(app, Settings(default_store="mem"), stores={"mem": store})
    body = {"model": "mem/gpt-4o", "prompt_id": "plain", "messages": []}
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = await client.post(URL, json=body)
        second = await client.post(URL, json=body)
        unmanaged = await client.post(URL, json={"model": "gpt-4o", "messages": []})
    assert [r.headers.get("x-prompt-cache") for r in (first, second, unmanaged)] == [
        "miss",
        "hit",
        None,
    ]
    assert seen == [True, None, None]
