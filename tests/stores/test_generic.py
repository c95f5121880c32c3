"""GenericPromptStore against a fake LiteLLM-style prompt service, against respx, and the
single-brace variable rewrite on its own.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
import respx
from structlog.testing import capture_logs

from prompt_middleware.errors import (
    ConfigurationError,
    InvalidPromptRequest,
    PromptNotFound,
    PromptStoreUnavailable,
)
from prompt_middleware.prepare import render_prompt
from prompt_middleware.prompts import ChatMessage, PromptQuery
from prompt_middleware.render import RenderOptions
from prompt_middleware.stores.generic import GenericPromptStore, double_single_braces
from tests.fakes.generic_prompts import INVALID_JSON, WRONG_SHAPE, FakeGenericPromptServer
from tests.fakes.server import serve_in_background
from tests.stores.kinds import GENERIC, GENERIC_API_BASE, GENERIC_API_KEY, HttpKind

API_KEY = GENERIC_API_KEY
API_BASE = GENERIC_API_BASE
ENDPOINT = f"{API_BASE}/beta/litellm_prompt_management"
make_store = GENERIC.make_store
TEMPLATE = [
    {"role": "system", "content": "You are a helpful assistant specialized in {domain}."},
    {"role": "user", "content": "Help me with {task}"},
]


@pytest.fixture
def kind() -> HttpKind:
    return GENERIC


def prompt_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt_id": "x",
        "prompt_template": TEMPLATE,
        "prompt_template_model": "gpt-4",
        "prompt_template_optional_params": {"temperature": 0.7, "max_tokens": 500},
    }
    body.update(fields)
    return body


# --- the single-brace rewrite ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "served"),
    [
        ("{a}", "{{a}}"),
        ("{{a}}", "{{a}}"),
        ("{{ a }}", "{{ a }}"),
        ("Help me with {task} in {domain}.", "Help me with {{task}} in {{domain}}."),
        ("{a}{b}", "{{a}}{{b}}"),
        ("{a}{{b}}{c}", "{{a}}{{b}}{{c}}"),
        ("{_private1}", "{{_private1}}"),
        ("{naïve}", "{{naïve}}"),
        ('{ "json": 1 }', '{ "json": 1 }'),
        ('{"a": {"b": 1}}', '{"a": {"b": 1}}'),
        ("{}", "{}"),
        ("{0}", "{0}"),
        ("{1st}", "{1st}"),
        ("{ a }", "{ a }"),
        ("{a-b}", "{a-b}"),
        ("{a.b}", "{a.b}"),
        ("{{{a}}}", "{{{a}}}"),
        ("{{a}", "{{a}"),
        ("{a}}", "{a}}"),
        ("{{ x {a} }}", "{{ x {a} }}"),  # inside a variable as the renderer reads it
        ("{{ open {a}", "{{ open {a}"),  # after an unclosed "{{": "}}" would close it
        ("{a} {{b}} {c} {{ open {d}", "{{a}} {{b}} {{c}} {{ open {d}"),
        ("function f() {return}", "function f() {{return}}"),
        ("no braces", "no braces"),
        ("", ""),
    ],
)
def test_double_single_braces(written: str, served: str) -> None:
    assert double_single_braces(written) == served


@pytest.mark.parametrize(
    ("template", "variables", "rendered"),
    [
        ("Help me with {task}", {"task": "data"}, "Help me with data"),
        ("Help me with {{task}}", {"task": "data"}, "Help me with data"),  # LiteLLM: "{data}"
        ("{a} and {{a}}", {"a": 1}, "1 and 1"),
        ('JSON: { "k": {v} }', {"v": "x"}, 'JSON: { "k": x }'),
        ("{a}", {"a": "{b}"}, "{b}"),  # no re-expansion of substituted text
        ("{a}", {}, "{{a}}"),  # unfilled: reported missing, shown doubled
    ],
)
async def test_rendered_as_litellm_documents(
    mock: respx.MockRouter,
    mocked_store: GenericPromptStore,
    template: str,
    variables: dict[str, Any],
    rendered: str,
) -> None:
    mock.get(ENDPOINT).respond(
        200, json=prompt_body(prompt_template=[{"role": "user", "content": template}])
    )

    prompt = await mocked_store.get_prompt(PromptQuery("x"))
    result = render_prompt(prompt, variables, None, RenderOptions())

    assert result.messages == [{"role": "user", "content": rendered}]


# --- fetching and mapping ------------------------------------------------------------------


async def test_prompt(fake: FakeGenericPromptServer, store: GenericPromptStore) -> None:
    fake.add_prompt(
        "simple_prompt",
        TEMPLATE,
        model="gpt-4",
        optional_params={"temperature": 0.7, "max_tokens": 500, "top_p": 0.9},
    )

    prompt = await store.get_prompt(PromptQuery("simple_prompt"))

    assert (prompt.name, prompt.type, prompt.labels) == ("simple_prompt", "chat", ())
    assert prompt.prompt == (
        ChatMessage(
            role="system", content="You are a helpful assistant specialized in {{domain}}."
        ),
        ChatMessage(role="user", content="Help me with {{task}}"),
    )
    assert prompt.config == {"temperature": 0.7, "max_tokens": 500, "top_p": 0.9, "model": "gpt-4"}
    assert isinstance(prompt.version, str)
    assert len(prompt.version) == 12
    (request,) = fake.requests
    assert request.query == [("prompt_id", "simple_prompt")]
    assert request.authorization == f"Bearer {API_KEY}"


async def test_without_model_and_params(
    fake: FakeGenericPromptServer, store: GenericPromptStore
) -> None:
    fake.add_prompt("p", [{"role": "user", "content": "hi"}])

    prompt = await store.get_prompt(PromptQuery("p"))

    assert prompt.config == {}


@pytest.mark.parametrize(
    ("fields", "config"),
    [
        (
            {"prompt_template_optional_params": {"temperature": None, "seed": 1}},
            {"seed": 1, "model": "gpt-4"},
        ),
        (
            {"prompt_template_optional_params": {"model": "other", "n": 2}},
            {"n": 2, "model": "gpt-4"},
        ),
        ({"prompt_template_model": None, "prompt_template_optional_params": {"model": "m"}}, {}),
        ({"prompt_template_model": ""}, {"temperature": 0.7, "max_tokens": 500}),
        ({"prompt_template_optional_params": None}, {"model": "gpt-4"}),
    ],
)
async def test_config(
    mock: respx.MockRouter,
    mocked_store: GenericPromptStore,
    fields: dict[str, Any],
    config: dict[str, Any],
) -> None:
    mock.get(ENDPOINT).respond(200, json=prompt_body(**fields))

    prompt = await mocked_store.get_prompt(PromptQuery("x"))

    assert prompt.config == config


async def test_fields_litellm_does_not_need_are_optional(
    mock: respx.MockRouter, mocked_store: GenericPromptStore
) -> None:
    mock.get(ENDPOINT).respond(200, json={"prompt_template": [], "extra": {"ignored": True}})

    prompt = await mocked_store.get_prompt(PromptQuery("x"))

    assert (prompt.prompt, prompt.config) == ((), {})


async def test_message_content(mock: respx.MockRouter, mocked_store: GenericPromptStore) -> None:
    template = [
        {
            "role": "system",
            "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "{n}"}],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        {"role": "user", "content": "x", "name": "someone"},
    ]
    mock.get(ENDPOINT).respond(200, json=prompt_body(prompt_template=template))

    prompt = await mocked_store.get_prompt(PromptQuery("x"))

    assert prompt.prompt == (
        ChatMessage(role="system", content="Hi {{n}}"),
        ChatMessage(role="assistant", content=""),
        ChatMessage(role="user", content="x"),
    )


async def test_version_follows_the_content(
    fake: FakeGenericPromptServer, client: httpx2.AsyncClient
) -> None:
    store = make_store(client)
    fake.add_prompt("a", TEMPLATE, model="gpt-4")
    fake.add_prompt("b", TEMPLATE, model="gpt-4")
    fake.add_prompt("c", TEMPLATE, model="gpt-4o")
    fake.add_prompt("d", [{"role": "user", "content": "other"}], model="gpt-4")

    a1 = await store.get_prompt(PromptQuery("a"))
    a2 = await store.get_prompt(PromptQuery("a"))
    b, c, d = [await store.get_prompt(PromptQuery(n)) for n in "bcd"]

    assert a1.version == a2.version == b.version  # same content, same version
    assert len({a1.version, c.version, d.version}) == 3


async def test_query_params_choose_the_variant(
    fake: FakeGenericPromptServer, client: httpx2.AsyncClient
) -> None:
    fake.add_prompt("p", [{"role": "user", "content": "plain"}])
    fake.add_prompt("p", [{"role": "user", "content": "v2"}], query={"slug": "v2"})
    plain = make_store(client)
    tuned = make_store(client, query_params={"project_name": "litellm", "slug": "v2"})

    assert (await plain.get_prompt(PromptQuery("p"))).prompt[0] == ChatMessage("user", "plain")
    assert (await tuned.get_prompt(PromptQuery("p"))).prompt[0] == ChatMessage("user", "v2")
    assert fake.requests[-1].query == [
        ("prompt_id", "p"),
        ("project_name", "litellm"),
        ("slug", "v2"),
    ]


async def test_returned_prompts_share_no_mutable_state(
    fake: FakeGenericPromptServer, store: GenericPromptStore
) -> None:
    params = {"response_format": {"type": "json_object"}, "stop": ["x"]}
    fake.add_prompt("p", TEMPLATE, optional_params=params)

    first = await store.get_prompt(PromptQuery("p"))
    first.config["response_format"]["type"] = "mutated"
    first.config["stop"].append("y")
    first.config["seed"] = 1
    second = await store.get_prompt(PromptQuery("p"))

    assert second.config == {"response_format": {"type": "json_object"}, "stop": ["x"]}
    assert second.version == first.version
    assert params == {"response_format": {"type": "json_object"}, "stop": ["x"]}


# --- what goes out on the wire ---------------------------------------------------------------


async def test_request(mock: respx.MockRouter) -> None:
    route = mock.get(ENDPOINT).respond(200, json=prompt_body())
    async with httpx2.AsyncClient() as client:
        store = make_store(
            client, query_params={"project_name": "litellm", "slug": "hello world&x=1"}
        )
        await store.get_prompt(PromptQuery("hello-world-prompt-2bac"))

    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.raw_path == (
        b"/beta/litellm_prompt_management?prompt_id=hello-world-prompt-2bac"
        b"&project_name=litellm&slug=hello+world%26x%3D1"
    )
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["accept"] == "application/json"
    assert request.content == b""


@pytest.mark.parametrize("api_key", [None, ""])
async def test_no_key_no_authorization_header(mock: respx.MockRouter, api_key: str | None) -> None:
    route = mock.get(ENDPOINT).respond(200, json=prompt_body())
    async with httpx2.AsyncClient() as client:
        await make_store(client, api_key=api_key).get_prompt(PromptQuery("x"))

    assert "authorization" not in route.calls.last.request.headers


@pytest.mark.parametrize(
    ("api_base", "url"),
    [
        ("http://prompts.test/", ENDPOINT),
        (
            "https://example.test/prompt-service",
            "https://example.test/prompt-service/beta/litellm_prompt_management",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/beta/litellm_prompt_management"),
    ],
)
async def test_api_base(mock: respx.MockRouter, api_base: str, url: str) -> None:
    route = mock.get(url, params={"prompt_id": "x"}).respond(200, json=prompt_body())
    async with httpx2.AsyncClient() as client:
        await make_store(client, api_base=api_base).get_prompt(PromptQuery("x"))

    assert route.call_count == 1


@pytest.mark.parametrize("name", ["support/answer", "a&b=c", "../x", "naïve", "#x"])
async def test_awkward_ids_are_one_query_value(
    fake: FakeGenericPromptServer, store: GenericPromptStore, name: str
) -> None:
    fake.add_prompt(name, [{"role": "user", "content": name}])
    fake.add_prompt("a", [{"role": "user", "content": "decoy"}])

    prompt = await store.get_prompt(PromptQuery(name))

    assert prompt.prompt == (ChatMessage("user", name),)
    assert fake.requests[-1].query == [("prompt_id", name)]


# --- labels and versions -------------------------------------------------------------------


@pytest.mark.parametrize("label", [None, "production"])
async def test_the_default_label_is_served(
    mock: respx.MockRouter, mocked_store: GenericPromptStore, label: str | None
) -> None:
    route = mock.get(ENDPOINT, params={"prompt_id": "x"}).respond(200, json=prompt_body())

    await mocked_store.get_prompt(PromptQuery("x", label=label))

    assert dict(route.calls.last.request.url.params) == {"prompt_id": "x"}


@pytest.mark.parametrize(
    ("query", "param"),
    [
        (PromptQuery("x", label="staging"), "prompt_label"),
        (PromptQuery("x", label="latest"), "prompt_label"),
        (PromptQuery("x", version=2), "prompt_version"),
    ],
)
async def test_labels_and_versions_are_refused_without_a_request(
    mock: respx.MockRouter, mocked_store: GenericPromptStore, query: PromptQuery, param: str
) -> None:
    with pytest.raises(InvalidPromptRequest) as caught:
        await mocked_store.get_prompt(query)

    assert caught.value.param == param
    assert "provider_specific_query_params" in caught.value.message


# --- errors --------------------------------------------------------------------------------


async def test_not_found(fake: FakeGenericPromptServer, store: GenericPromptStore) -> None:
    with pytest.raises(PromptNotFound) as caught:
        await store.get_prompt(PromptQuery("missing"))

    assert caught.value.message == "The prompt service at prompts.test has no prompt 'missing'"
    assert caught.value.param == "prompt_id"
    assert fake.fetch_count == 1


@pytest.mark.parametrize("api_key", ["sk-wrong-and-secret", None])
async def test_refused_key_is_named_but_never_shown(
    fake: FakeGenericPromptServer, client: httpx2.AsyncClient, api_key: str | None
) -> None:
    fake.add_prompt("p", TEMPLATE)
    store = make_store(client, api_key=api_key, retries=3)

    with pytest.raises(PromptStoreUnavailable) as caught, capture_logs() as logs:
        await store.get_prompt(PromptQuery("p"))

    error = caught.value
    assert "refused the API key (HTTP 401)" in error.message
    assert ("check the prompts: entry's api_key" in error.message) == (api_key is not None)
    shown = error.message + error.to_json().decode() + repr(error) + repr(store) + repr(logs)
    assert API_KEY not in shown
    assert api_key is None or api_key not in shown
    assert fake.fetch_count == 1


@pytest.mark.parametrize(
    ("body", "broken"), [(INVALID_JSON, "not JSON"), (WRONG_SHAPE, "`prompt_template`")]
)
async def test_broken_body(
    fake: FakeGenericPromptServer, store: GenericPromptStore, body: bytes, broken: str
) -> None:
    fake.add_prompt("p", TEMPLATE)
    fake.broken_body = body

    with pytest.raises(PromptStoreUnavailable) as caught:
        await store.get_prompt(PromptQuery("p"))

    assert caught.value.message.startswith("The prompt service returned an invalid prompt for 'p'")
    assert broken in caught.value.message


@pytest.mark.parametrize(
    "body",
    [
        prompt_body(prompt_template=None),
        prompt_body(prompt_template="You are helpful"),
        prompt_body(prompt_template=[{"content": "no role"}]),
        prompt_body(prompt_template=[{"role": "user", "content": 1}]),
        prompt_body(prompt_template=[{"role": "user", "content": [{"type": "image_url"}]}]),
        prompt_body(prompt_template_model=4),
        prompt_body(prompt_template_optional_params=[]),
        {"prompt_id": "x"},
        [],
        None,
    ],
)
async def test_wrong_shape(
    mock: respx.MockRouter, mocked_store: GenericPromptStore, body: Any
) -> None:
    mock.get(ENDPOINT).respond(200, json=body)

    with pytest.raises(PromptStoreUnavailable, match="invalid prompt for 'x'"):
        await mocked_store.get_prompt(PromptQuery("x"))


async def test_fetches_are_logged_without_secrets(
    fake: FakeGenericPromptServer, client: httpx2.AsyncClient
) -> None:
    fake.add_prompt("p", TEMPLATE)
    store = make_store(client, query_params={"token": "qp-secret-value"})

    with capture_logs() as logs:
        await store.get_prompt(PromptQuery("p"))

    (entry,) = [e for e in logs if e["event"] == "generic_prompts.fetch"]
    assert (entry["log_level"], entry["prompt"], entry["status"]) == ("debug", "p", 200)
    assert API_KEY not in repr(logs)
    assert "qp-secret-value" not in repr(logs)


# --- construction and lifecycle --------------------------------------------------------------


@pytest.mark.parametrize(
    "query_params",
    [{"prompt_id": "other"}, {"": "x"}, {"slug": 3}, {4: "x"}],
)
def test_bad_query_params(query_params: Any) -> None:
    with pytest.raises(ConfigurationError, match="provider_specific_query_params"):
        GenericPromptStore(api_base=API_BASE, query_params=query_params)


async def test_query_params_are_copied(mock: respx.MockRouter) -> None:
    route = mock.get(ENDPOINT).respond(200, json=prompt_body())
    params = {"slug": "a"}
    async with httpx2.AsyncClient() as client:
        store = make_store(client, query_params=params)
        params["slug"] = "changed"
        await store.get_prompt(PromptQuery("x"))

    assert route.calls.last.request.url.params["slug"] == "a"


async def test_own_client_over_real_http(fake: FakeGenericPromptServer) -> None:
    fake.add_prompt("p", TEMPLATE, model="gpt-4")
    async with serve_in_background(fake.app) as base_url:
        store = GenericPromptStore(api_base=base_url, api_key=API_KEY)
        try:
            prompt = await store.get_prompt(PromptQuery("p"))
        finally:
            await store.aclose()

        assert prompt.config == {"model": "gpt-4"}
        assert fake.requests[0].path == "/beta/litellm_prompt_management"
        with pytest.raises(PromptStoreUnavailable, match="closed"):
            await store.get_prompt(PromptQuery("p"))
