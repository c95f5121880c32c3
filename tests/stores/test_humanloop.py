"""HumanloopStore against the fake Humanloop (in process and over real HTTP) and against respx.

The fake answers as Humanloop's v5 API is documented to; respx pins the exact requests that
go out (endpoint per id or path, query, headers, body). Nothing waits on the clock: a slow
Humanloop is a held response, and the store's deadline is what ends the wait.
"""

from __future__ import annotations

import json
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
from prompt_middleware.prompts import ChatMessage, Prompt, PromptQuery
from prompt_middleware.stores.humanloop import HumanloopStore
from tests.fakes.humanloop import INVALID_JSON, WRONG_SHAPE, FakeHumanloop
from tests.fakes.server import serve_in_background
from tests.stores.kinds import HUMANLOOP, HUMANLOOP_API_KEY, HUMANLOOP_BASE_URL, HttpKind

API_KEY = HUMANLOOP_API_KEY
BASE_URL = HUMANLOOP_BASE_URL
PROMPT_ID = "pr_30gco7dx6JDq4200GVOHa"
VERSION_ID = "prv_7ZlQREDScH0xkhUwtXruN"
BY_ID = f"{BASE_URL}/prompts/{PROMPT_ID}"
BY_PATH = f"{BASE_URL}/files/retrieve-by-path"
# What a version has when nothing is set: Humanloop's defaults, minus max_tokens -1.
make_store = HUMANLOOP.make_store


@pytest.fixture
def kind() -> HttpKind:
    return HUMANLOOP


DEFAULT_CONFIG = {
    "model": "gpt-4o",
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
}


def prompt_body(**fields: Any) -> dict[str, Any]:
    """A PromptResponse as the SDK's reference shows one (``client.prompts.get``)."""
    body: dict[str, Any] = {
        "path": "Personal Projects/Coding Assistant",
        "id": PROMPT_ID,
        "name": "Coding Assistant",
        "version_id": VERSION_ID,
        "type": "prompt",
        "environments": [
            {
                "id": "env_ffSVxEBzJcBZ1H5jcNMVj",
                "created_at": "2023-06-27T23:16:07.992339",
                "name": "production",
                "tag": "default",
            }
        ],
        "created_at": "2024-07-08T22:40:35.656915",
        "updated_at": "2024-07-08T22:40:35.656915",
        "status": "committed",
        "last_used_at": "2024-07-08T22:40:35.656915",
        "model": "gpt-4o",
        "endpoint": "chat",
        "template": [
            {"content": "You are a coding assistant specialising in {{language}}", "role": "system"}
        ],
        "provider": "openai",
        "max_tokens": -1,
        "temperature": 0.7,
        "top_p": 1,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "other": {},
        "tools": [],
        "linked_tools": [],
        "version_logs_count": 0,
        "total_logs_count": 0,
        "inputs": [{"name": "language"}],
    }
    body.update(fields)
    return body


# --- fetching and mapping ------------------------------------------------------------------


async def test_chat_prompt_by_id(fake: FakeHumanloop, store: HumanloopStore) -> None:
    prompt_id, version_id = fake.add_prompt(
        "support/answer",
        [
            {"role": "system", "content": "You answer for {{company}}."},
            {"role": "user", "content": "{{question}}"},
        ],
        deploy_to=["production"],
        temperature=0.2,
    )

    prompt = await store.get_prompt(PromptQuery(prompt_id))

    assert prompt == Prompt(
        name=prompt_id,
        version=version_id,
        type="chat",
        prompt=(
            ChatMessage(role="system", content="You answer for {{company}}."),
            ChatMessage(role="user", content="{{question}}"),
        ),
        config={**DEFAULT_CONFIG, "temperature": 0.2},
        labels=("production",),
    )
    (request,) = fake.requests
    assert (request.method, request.path, request.query) == (
        "GET",
        f"/v5/prompts/{prompt_id}",
        {},
    )
    assert request.api_key == API_KEY


async def test_text_prompt_by_path(fake: FakeHumanloop, store: HumanloopStore) -> None:
    _, version_id = fake.add_prompt(
        "Personal Projects/Writer", "Write about {{topic}}.", endpoint="complete"
    )

    prompt = await store.get_prompt(PromptQuery("Personal Projects/Writer"))

    assert (prompt.name, prompt.version, prompt.type) == (
        "Personal Projects/Writer",
        version_id,
        "text",
    )
    assert prompt.prompt == "Write about {{topic}}."
    assert prompt.labels == ()  # deployed nowhere: Humanloop answers its latest version
    (request,) = fake.requests
    assert (request.method, request.path, request.body) == (
        "POST",
        "/v5/files/retrieve-by-path",
        {"path": "Personal Projects/Writer"},
    )


async def test_environment_label(fake: FakeHumanloop, store: HumanloopStore) -> None:
    prompt_id, live = fake.add_prompt("p", "live", deploy_to=["production"])
    _, trying = fake.add_prompt("p", "trying", deploy_to=["staging"])

    by_label = await store.get_prompt(PromptQuery(prompt_id, label="staging"))
    by_path = await store.get_prompt(PromptQuery("p", label="staging"))
    default = await store.get_prompt(PromptQuery(prompt_id))

    assert (by_label.version, by_label.prompt, by_label.labels) == (trying, "trying", ("staging",))
    assert by_path.version == trying
    assert (default.version, default.prompt) == (live, "live")
    assert [r.query for r in fake.requests] == [{"environment": "staging"}] * 2 + [{}]


@pytest.mark.parametrize("label", [None, "production"])
async def test_production_is_the_default_environment(label: str | None) -> None:
    # The middleware's default label asks for Humanloop's default: whatever it is named.
    fake = FakeHumanloop(
        api_key=API_KEY,
        environments=("development", "production"),
        default_environment="development",
    )
    prompt_id, dev = fake.add_prompt("p", "dev", deploy_to=["development"])
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.app)) as client:
        prompt = await make_store(client).get_prompt(PromptQuery(prompt_id, label=label))

    assert (prompt.version, prompt.labels) == (dev, ("development",))
    assert fake.requests[-1].query == {}


async def test_a_version_deployed_to_several_environments(
    fake: FakeHumanloop, store: HumanloopStore
) -> None:
    prompt_id, _ = fake.add_prompt("p", "x", deploy_to=["production", "staging"])

    prompt = await store.get_prompt(PromptQuery(prompt_id, label="staging"))

    assert prompt.labels == ("production", "staging")


async def test_parameters(fake: FakeHumanloop, store: HumanloopStore) -> None:
    schema = {"name": "answer", "schema": {"type": "object"}, "strict": True}
    prompt_id, _ = fake.add_prompt(
        "p",
        "x",
        model="gpt-4o-mini",
        max_tokens=256,
        temperature=0.3,
        top_p=0.9,
        stop=["\n\n", "END"],
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        seed=42,
        response_format={"type": "json_schema", "json_schema": schema},
        reasoning_effort="low",
        other={"logit_bias": {"50256": -100}, "temperature": 2.0, "user": None},
    )

    prompt = await store.get_prompt(PromptQuery(prompt_id))

    assert prompt.config == {
        "logit_bias": {"50256": -100},
        "model": "gpt-4o-mini",
        "temperature": 0.3,  # the field wins over `other`
        "top_p": 0.9,
        "stop": ["\n\n", "END"],
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "seed": 42,
        "max_tokens": 256,
        "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": schema},
    }


async def test_nulls_and_computed_max_tokens_are_left_out(
    mock: respx.MockRouter, mocked_store: HumanloopStore
) -> None:
    mock.get(BY_ID).respond(
        200,
        json=prompt_body(
            max_tokens=-1,
            temperature=None,
            top_p=None,
            stop=None,
            presence_penalty=None,
            frequency_penalty=None,
            seed=None,
            response_format={"type": "json_object", "json_schema": None},
            reasoning_effort=2048,  # Anthropic's token budget: no OpenAI value
            other=None,
            tools=None,
            linked_tools=None,
        ),
    )

    prompt = await mocked_store.get_prompt(PromptQuery(PROMPT_ID))

    assert prompt.config == {"model": "gpt-4o", "response_format": {"type": "json_object"}}


async def test_tools_become_openai_tool_objects(fake: FakeHumanloop, store: HumanloopStore) -> None:
    parameters = {"type": "object", "properties": {"ticker": {"type": "string"}}}
    prompt_id, _ = fake.add_prompt(
        "p",
        [{"role": "system", "content": "You are stockbot."}],
        tools=[
            {"name": "get_price", "description": "Get a price", "parameters": parameters},
            {"name": "ping", "description": "Ping", "parameters": None, "strict": True},
        ],
        linked_tools=[
            {
                "name": "search",
                "description": "Search the web",
                "strict": None,
                "parameters": {"type": "object"},
                "id": "tl_0123456789abcdef",
                "version_id": "tlv_0123456789abcdef",
            }
        ],
    )

    prompt = await store.get_prompt(PromptQuery(prompt_id))

    assert prompt.config["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_price",
                "description": "Get a price",
                "parameters": parameters,
            },
        },
        {"type": "function", "function": {"name": "ping", "description": "Ping", "strict": True}},
        {
            "type": "function",
            "function": {
                "name": "search",
                "description": "Search the web",
                "parameters": {"type": "object"},
            },
        },
    ]


async def test_no_tools_means_no_tools_key(fake: FakeHumanloop, store: HumanloopStore) -> None:
    prompt_id, _ = fake.add_prompt("p", "x", tools=[], linked_tools=[])

    prompt = await store.get_prompt(PromptQuery(prompt_id))

    assert "tools" not in prompt.config


async def test_message_content(mock: respx.MockRouter, mocked_store: HumanloopStore) -> None:
    template = [
        {
            "role": "system",
            "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "{{name}}"}],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}], "name": "bot"},
        {"role": "user", "content": "x", "name": "someone", "thinking": None},
    ]
    mock.get(BY_ID).respond(200, json=prompt_body(template=template))

    prompt = await mocked_store.get_prompt(PromptQuery(PROMPT_ID))

    assert prompt.prompt == (
        ChatMessage(role="system", content="Hello {{name}}"),
        ChatMessage(role="assistant", content=""),
        ChatMessage(role="user", content="x"),
    )


async def test_plain_jinja_is_served(fake: FakeHumanloop, store: HumanloopStore) -> None:
    prompt_id, _ = fake.add_prompt(
        "p",
        [{"role": "user", "content": "Hi {{ name }}, about {{topic}}"}],
        template_language="jinja",
    )

    prompt = await store.get_prompt(PromptQuery(prompt_id))

    assert prompt.prompt == (ChatMessage(role="user", content="Hi {{ name }}, about {{topic}}"),)


async def test_default_template_language_is_not_jinja(
    fake: FakeHumanloop, store: HumanloopStore
) -> None:
    prompt_id, _ = fake.add_prompt("p", "Write {% raw %} as is, {{name}}")

    prompt = await store.get_prompt(PromptQuery(prompt_id))

    assert prompt.prompt == "Write {% raw %} as is, {{name}}"


async def test_returned_prompts_share_no_mutable_state(
    fake: FakeHumanloop, store: HumanloopStore
) -> None:
    tools = [{"name": "f", "description": "d", "parameters": {"type": "object"}}]
    prompt_id, _ = fake.add_prompt(
        "p", "x", tools=tools, response_format={"type": "json_object"}, other={"n": 1}
    )

    first = await store.get_prompt(PromptQuery(prompt_id))
    first.config["tools"][0]["function"]["parameters"]["type"] = "mutated"
    first.config["response_format"]["type"] = "mutated"
    first.config["temperature"] = 99
    second = await store.get_prompt(PromptQuery(prompt_id))

    assert second.config["tools"][0]["function"]["parameters"] == {"type": "object"}
    assert second.config["response_format"] == {"type": "json_object"}
    assert second.config["temperature"] == 1
    assert tools == [{"name": "f", "description": "d", "parameters": {"type": "object"}}]


# --- errors --------------------------------------------------------------------------------


async def test_version_numbers_are_refused_without_a_request(
    mock: respx.MockRouter, mocked_store: HumanloopStore
) -> None:
    with pytest.raises(InvalidPromptRequest) as caught:
        await mocked_store.get_prompt(PromptQuery(PROMPT_ID, version=3))

    assert caught.value.param == "prompt_version"
    assert caught.value.status_code == 400
    assert "prompt_label" in caught.value.message


@pytest.mark.parametrize(
    ("query", "described"),
    [
        (PromptQuery("pr_000000000000000000000"), "'pr_000000000000000000000' in the default"),
        (PromptQuery("no/such/path"), "'no/such/path' in the default environment"),
        (PromptQuery("p", label="staging"), "'p' in environment 'staging'"),
        (PromptQuery("p", label="no-such-env"), "'p' in environment 'no-such-env'"),
    ],
)
async def test_not_found(
    fake: FakeHumanloop, store: HumanloopStore, query: PromptQuery, described: str
) -> None:
    fake.add_prompt("p", "x", deploy_to=["production"])

    with pytest.raises(PromptNotFound) as caught:
        await store.get_prompt(query)

    assert described in caught.value.message
    assert caught.value.param == "prompt_id"
    assert fake.fetch_count == 1  # an answer, not a failure: never retried


async def test_a_path_that_is_not_a_prompt(fake: FakeHumanloop, store: HumanloopStore) -> None:
    fake.add_tool("tools/search")

    with pytest.raises(PromptNotFound, match="'tools/search' is a tool, not a prompt"):
        await store.get_prompt(PromptQuery("tools/search"))


async def test_refused_api_key_is_named_but_never_shown(
    fake: FakeHumanloop, client: httpx2.AsyncClient
) -> None:
    prompt_id, _ = fake.add_prompt("p", "x")
    wrong = "hl_sk_wrong-and-secret"
    store = make_store(client, api_key=wrong, retries=3)

    with pytest.raises(PromptStoreUnavailable) as caught, capture_logs() as logs:
        await store.get_prompt(PromptQuery(prompt_id))

    error = caught.value
    assert "Humanloop at humanloop.test refused the API key (HTTP 401)" in error.message
    assert "HUMANLOOP_API_KEY" in error.message
    assert error.status_code == 502
    shown = error.message + error.to_json().decode() + repr(error) + repr(store) + repr(logs)
    assert wrong not in shown
    assert API_KEY not in shown
    assert fake.fetch_count == 1


async def test_a_retry_sends_the_path_again(fake: FakeHumanloop, store: HumanloopStore) -> None:
    fake.add_prompt("folder/p", "x")
    fake.fail_next(1, 503)

    prompt = await store.get_prompt(PromptQuery("folder/p"))

    assert prompt.prompt == "x"
    assert fake.fetch_count == 2
    assert [r.body for r in fake.requests] == [{"path": "folder/p"}] * 2


@pytest.mark.parametrize(
    ("body", "broken"), [(INVALID_JSON, "not JSON"), (WRONG_SHAPE, "`version_id`")]
)
async def test_broken_body(
    fake: FakeHumanloop, store: HumanloopStore, body: bytes, broken: str
) -> None:
    prompt_id, _ = fake.add_prompt("p", "x")
    fake.broken_body = body

    with pytest.raises(PromptStoreUnavailable) as caught:
        await store.get_prompt(PromptQuery(prompt_id))

    assert caught.value.message.startswith(
        f"Humanloop returned an invalid prompt for '{prompt_id}'"
    )
    assert broken in caught.value.message
    assert fake.fetch_count == 1


@pytest.mark.parametrize(
    "body",
    [
        prompt_body(template=None),
        prompt_body(template=42),
        prompt_body(template=[{"content": "no role"}]),
        prompt_body(template=[{"role": "user", "content": 3}]),
        prompt_body(
            template=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]
        ),
        prompt_body(template=[{"role": "user", "content": [{"type": "text"}]}]),
        prompt_body(version_id=None),
        prompt_body(environments="production"),
        prompt_body(tools=[{"description": "no name"}]),
        prompt_body(max_tokens="many"),
        [],
        None,
    ],
)
async def test_wrong_shape(mock: respx.MockRouter, mocked_store: HumanloopStore, body: Any) -> None:
    mock.get(BY_ID).respond(200, json=body)

    with pytest.raises(PromptStoreUnavailable, match=f"invalid prompt for '{PROMPT_ID}'"):
        await mocked_store.get_prompt(PromptQuery(PROMPT_ID))


# --- what goes out on the wire ---------------------------------------------------------------


async def test_get_by_id_request(mock: respx.MockRouter, mocked_store: HumanloopStore) -> None:
    route = mock.get(BY_ID, params={"environment": "staging"}).respond(200, json=prompt_body())

    await mocked_store.get_prompt(PromptQuery(PROMPT_ID, label="staging"))

    request = route.calls.last.request
    assert request.url == f"{BY_ID}?environment=staging"
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["accept"] == "application/json"
    assert "authorization" not in request.headers
    assert request.content == b""


async def test_get_by_path_request(mock: respx.MockRouter, mocked_store: HumanloopStore) -> None:
    route = mock.post(BY_PATH).respond(200, json=prompt_body())

    await mocked_store.get_prompt(PromptQuery("Personal Projects/Coding Assistant"))
    await mocked_store.get_prompt(PromptQuery("a&b?c", label="dev env"))

    first, second = (call.request for call in route.calls)
    assert first.url == BY_PATH
    assert json.loads(first.content) == {"path": "Personal Projects/Coding Assistant"}
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-api-key"] == API_KEY
    assert second.url.raw_path == b"/v5/files/retrieve-by-path?environment=dev+env"
    assert json.loads(second.content) == {"path": "a&b?c"}


@pytest.mark.parametrize(
    ("name", "by_id"),
    [
        (PROMPT_ID, True),
        ("pr_abcdefABCDEF0123", True),
        ("pr_review", False),  # too short for an id: a prompt at the top level
        ("pr_30gco7dx6JDq4200GVOHa/x", False),
        ("folder/pr_30gco7dx6JDq4200GVOHa", False),
        ("pr_30gco7dx6JDq-200GVOHa", False),
        ("PR_30gco7dx6JDq4200GVOHa", False),
    ],
)
async def test_ids_and_paths(
    mock: respx.MockRouter, mocked_store: HumanloopStore, name: str, by_id: bool
) -> None:
    route = (mock.get(f"{BASE_URL}/prompts/{name}") if by_id else mock.post(BY_PATH)).respond(
        200, json=prompt_body()
    )

    prompt = await mocked_store.get_prompt(PromptQuery(name))

    assert prompt.name == name
    assert route.call_count == 1


async def test_default_base_url(mock: respx.MockRouter) -> None:
    route = mock.get(f"https://api.humanloop.com/v5/prompts/{PROMPT_ID}").respond(
        200, json=prompt_body()
    )
    async with httpx2.AsyncClient() as client:
        store = HumanloopStore(api_key=API_KEY, client=client)
        await store.get_prompt(PromptQuery(PROMPT_ID))

    assert route.call_count == 1


async def test_fetches_are_logged_without_secrets(
    fake: FakeHumanloop, store: HumanloopStore
) -> None:
    prompt_id, _ = fake.add_prompt("p", "x", deploy_to=["staging"])

    with capture_logs() as logs:
        await store.get_prompt(PromptQuery(prompt_id, label="staging"))

    (entry,) = [e for e in logs if e["event"] == "humanloop.fetch"]
    assert entry["log_level"] == "debug"
    assert (entry["prompt"], entry["environment"], entry["status"], entry["attempt"]) == (
        prompt_id,
        "staging",
        200,
        1,
    )
    assert API_KEY not in repr(logs)


# --- construction and lifecycle --------------------------------------------------------------


def test_empty_api_key() -> None:
    with pytest.raises(ConfigurationError, match="HUMANLOOP_API_KEY"):
        HumanloopStore(api_key="")


async def test_own_client_over_real_http(fake: FakeHumanloop) -> None:
    prompt_id, _ = fake.add_prompt("folder/p", [{"role": "user", "content": "hi"}])
    async with serve_in_background(fake.app) as base_url:
        store = HumanloopStore(base_url=f"{base_url}/v5", api_key=API_KEY)
        try:
            by_id = await store.get_prompt(PromptQuery(prompt_id))
            by_path = await store.get_prompt(PromptQuery("folder/p"))
        finally:
            await store.aclose()

        assert by_id.prompt == by_path.prompt == (ChatMessage(role="user", content="hi"),)
        assert [(r.method, r.path) for r in fake.requests] == [
            ("GET", f"/v5/prompts/{prompt_id}"),
            ("POST", "/v5/files/retrieve-by-path"),
        ]
        with pytest.raises(PromptStoreUnavailable, match="closed"):
            await store.get_prompt(PromptQuery(prompt_id))
