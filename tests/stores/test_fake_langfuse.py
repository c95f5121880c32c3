"""The fake Langfuse server against Langfuse's API reference and against the real ``langfuse`` SDK.

Every kind of prompt the fake serves is parsed three ways: by the SDK's pydantic models
(``langfuse.api.Prompt``), by its async API client in process, and by ``Langfuse.get_prompt``
itself over real HTTP to the fake served by uvicorn on 127.0.0.1. Then the fake's own rules:
labels, ``latest``, ``production``, the error bodies and the test knobs.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import quote

import httpx
import httpx2
import pydantic
import pytest
from langfuse import Langfuse
from langfuse.api import AsyncLangfuseAPI, Error, NotFoundError, Prompt_Chat, Prompt_Text
from langfuse.api import Prompt as LangfusePrompt
from langfuse.api import UnauthorizedError as LangfuseUnauthorizedError
from langfuse.api.core import parse_obj_as
from langfuse.model import ChatPromptClient, TextPromptClient

from tests.fakes.langfuse import INVALID_JSON, WRONG_SHAPE, FakeLangfuse
from tests.fakes.server import serve_in_background

PUBLIC_KEY = "pk-lf-fake"
SECRET_KEY = "sk-lf-fake"
AUTH = httpx2.BasicAuth(PUBLIC_KEY, SECRET_KEY)
PROMPTS = "/api/public/v2/prompts/"

PROMPT_ADAPTER: pydantic.TypeAdapter[Prompt_Chat | Prompt_Text] = pydantic.TypeAdapter(
    LangfusePrompt
)

CHAT = [
    {"role": "system", "content": "You answer for {{company}}."},
    {"type": "placeholder", "name": "history"},
    {"type": "chatmessage", "role": "user", "content": "{{question}}"},
]

# (name, prompt, add_prompt options): every shape of prompt the fake can serve.
CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("text", "Hello {{name}}", {}),
    ("text-config", "Hi", {"config": {"model": "gpt-4o-mini", "temperature": 0.2}}),
    ("folder/sub/text", "In a folder", {"tags": ["a", "b"], "commit_message": "first"}),
    ("chat", [{"role": "user", "content": "hi"}], {}),
    ("chat-typed", [{"type": "chatmessage", "role": "user", "content": "hi"}], {}),
    ("chat/placeholders", CHAT, {"config": {"model": "m", "tools": [{"type": "function"}]}}),
    ("only-placeholder", [{"type": "placeholder", "name": "messages"}], {}),
    ("empty-chat", [], {"type": "chat"}),
    ("config-list", "x", {"config": [1, "two", None, {"three": 3}]}),
    ("config-string", "x", {"config": "just a string"}),
    ("config-number", "x", {"config": 42.5}),
    ("config-bool", "x", {"config": False}),
    ("config-nested", "x", {"config": {"a": {"b": {"c": [True, None, 1e-3]}}, "": "empty"}}),
    ("odd name ?#&=%", "x", {}),
]
CASE_IDS = [case[0] for case in CASES]


def populated() -> FakeLangfuse:
    fake = FakeLangfuse(public_key=PUBLIC_KEY, secret_key=SECRET_KEY)
    for name, prompt, options in CASES:
        fake.add_prompt(name, prompt, labels=["production"], **options)
    return fake


@pytest.fixture
def fake() -> FakeLangfuse:
    return populated()


@pytest.fixture
async def http(fake: FakeLangfuse) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=fake.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://langfuse.test") as client:
        yield client


async def get(
    http: httpx2.AsyncClient, name: str, *, auth: Any = AUTH, raw: bool = False, **params: Any
) -> httpx2.Response:
    path = PROMPTS + (name if raw else quote(name, safe=""))
    return await http.get(path, params=params, auth=auth)


def expected_config(options: dict[str, Any]) -> Any:
    return options.get("config", {}) if options.get("config") is not None else {}


# --- the SDK accepts everything the fake serves ----------------------------------------------


@pytest.mark.parametrize(("name", "prompt", "options"), CASES, ids=CASE_IDS)
async def test_sdk_models_parse_every_prompt(
    http: httpx2.AsyncClient, name: str, prompt: Any, options: dict[str, Any]
) -> None:
    response = await get(http, name)

    assert response.status_code == 200
    # parse_obj_as is what the SDK's API client parses a 200 with (aliases included).
    parsed = parse_obj_as(cast("type[Prompt_Chat | Prompt_Text]", LangfusePrompt), response.json())
    assert parsed.name == name
    assert parsed.version == 1
    assert parsed.config == expected_config(options)
    assert parsed.labels == ["production", "latest"]
    assert parsed.tags == options.get("tags", [])
    assert parsed.commit_message == options.get("commit_message")
    if isinstance(prompt, str):
        assert isinstance(parsed, Prompt_Text)
        assert parsed.prompt == prompt
    else:
        assert isinstance(parsed, Prompt_Chat)
        assert [m.model_dump(exclude_none=True) for m in parsed.prompt] == prompt


async def test_sdk_async_api_client_in_process(fake: FakeLangfuse) -> None:
    # The Langfuse SDK is built on httpx, not httpx2.
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport) as client:
        api = AsyncLangfuseAPI(
            base_url="http://langfuse.test",
            username=PUBLIC_KEY,
            password=SECRET_KEY,
            httpx_client=client,
        )
        for name, prompt, _ in CASES:
            served = await api.prompts.get(quote(name, safe=""), label="production")
            assert (served.name, served.type) == (
                name,
                "text" if isinstance(prompt, str) else "chat",
            )

        with pytest.raises(Error) as bad_request:
            await api.prompts.get("text", label="production", version=1)
        assert bad_request.value.status_code == 400
        assert bad_request.value.body == {
            "message": "Cannot specify both version and label",
            "error": "InvalidRequestError",
        }


async def test_sdk_get_prompt_over_http() -> None:
    fake = populated()
    fake.add_prompt("chat/placeholders", [{"role": "user", "content": "v2"}], labels=["staging"])
    public_key = f"pk-lf-{uuid.uuid4()}"  # the SDK keeps one client per public key
    fake.public_key = public_key

    async with serve_in_background(fake.app) as base_url:
        langfuse = Langfuse(
            public_key=public_key, secret_key=SECRET_KEY, base_url=base_url, tracing_enabled=False
        )
        try:

            def fetch(name: str, **options: Any) -> TextPromptClient | ChatPromptClient:
                # cache_ttl_seconds=0: every call reaches the fake; max_retries=0: no sleeps.
                got: TextPromptClient | ChatPromptClient = langfuse.get_prompt(
                    name, cache_ttl_seconds=0, max_retries=0, **options
                )
                return got

            for name, prompt, options in CASES:
                client = await asyncio.to_thread(fetch, name)
                assert client.name == name
                assert client.config == expected_config(options)
                if isinstance(prompt, str):
                    assert isinstance(client, TextPromptClient)
                    assert client.prompt == prompt
                else:
                    assert isinstance(client, ChatPromptClient)
                    assert len(client.prompt) == len(prompt)
                    for got, sent in zip(client.prompt, prompt, strict=True):
                        if sent.get("type") == "placeholder":
                            assert got == {"type": "placeholder", "name": sent["name"]}
                        else:
                            assert got == {
                                "type": "message",
                                "role": sent["role"],
                                "content": sent["content"],
                            }

            staging = await asyncio.to_thread(fetch, "chat/placeholders", label="staging")
            pinned = await asyncio.to_thread(fetch, "chat/placeholders", version=1)
            latest = await asyncio.to_thread(fetch, "chat/placeholders", label="latest")
            assert (staging.version, pinned.version, latest.version) == (2, 1, 2)
            assert staging.labels == ["staging", "latest"]

            with pytest.raises(NotFoundError) as missing:
                await asyncio.to_thread(fetch, "no/such/prompt")
            assert missing.value.status_code == 404
            assert missing.value.body == {
                "message": "Prompt not found: 'no/such/prompt' with label 'production'",
                "error": "LangfuseNotFoundError",
            }
            with pytest.raises(NotFoundError):
                await asyncio.to_thread(fetch, "text", version=99)

            # The SDK sent every folder name with its slashes encoded.
            assert b"/api/public/v2/prompts/folder%2Fsub%2Ftext" in [
                r.raw_path for r in fake.requests
            ]

            fake.secret_key = "sk-lf-rotated"
            with pytest.raises(LangfuseUnauthorizedError) as refused:
                await asyncio.to_thread(fetch, "text")
            assert refused.value.status_code == 401
            assert refused.value.body == {
                "message": "Invalid credentials. Confirm that you've configured the correct host.",
                "error": "UnauthorizedError",
            }
        finally:
            await asyncio.to_thread(langfuse.shutdown)


# --- the API's rules -----------------------------------------------------------------------


async def test_body_has_the_schema_fields(http: httpx2.AsyncClient) -> None:
    body = (await get(http, "text")).json()

    required = {"name", "version", "type", "prompt", "config", "labels", "tags"}
    assert required <= body.keys()
    assert body["type"] == "text"


async def test_production_is_the_default(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    fake.add_prompt("p", "live", labels=["production"])
    fake.add_prompt("p", "newest")

    assert (await get(http, "p")).json()["prompt"] == "live"
    assert (await get(http, "p", label="production")).json()["prompt"] == "live"
    assert (await get(http, "p", label="")).json()["prompt"] == "live"


async def test_latest_is_automatic(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    fake.add_prompt("p", "one", labels=["production"])
    assert (await get(http, "p", label="latest")).json()["labels"] == ["production", "latest"]

    fake.add_prompt("p", "two")

    latest = (await get(http, "p", label="latest")).json()
    assert (latest["version"], latest["labels"]) == (2, ["latest"])
    assert (await get(http, "p", version=1)).json()["labels"] == ["production"]


def test_latest_cannot_be_set(fake: FakeLangfuse) -> None:
    with pytest.raises(ValueError, match="latest"):
        fake.add_prompt("p", "x", labels=["latest"])
    fake.add_prompt("p", "x")
    with pytest.raises(ValueError, match="latest"):
        fake.set_labels("p", 1, ["latest"])


async def test_labels_are_unique_per_prompt(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    fake.add_prompt("p", "one", labels=["production", "staging"])
    fake.add_prompt("p", "two", labels=["production"])
    fake.add_prompt("other", "x", labels=["production"])

    assert (await get(http, "p", version=1)).json()["labels"] == ["staging"]
    assert (await get(http, "p")).json()["version"] == 2
    assert (await get(http, "other")).json()["labels"] == ["production", "latest"]

    fake.set_labels("p", 1, ["production"])

    assert (await get(http, "p")).json()["version"] == 1
    assert (await get(http, "p", version=2)).json()["labels"] == ["latest"]
    assert (await get(http, "p", label="staging")).status_code == 404


def test_versions(fake: FakeLangfuse) -> None:
    assert fake.add_prompt("p", "one") == 1
    assert fake.add_prompt("p", "two") == 2
    assert fake.add_prompt("p", "ten", version=10) == 10
    assert fake.add_prompt("p", "eleven") == 11
    with pytest.raises(ValueError, match="taken"):
        fake.add_prompt("p", "again", version=2)
    with pytest.raises(ValueError, match="chat"):
        fake.add_prompt("q", "text", type="chat")


async def test_deleted_prompt(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    fake.delete_prompt("text")

    assert (await get(http, "text")).status_code == 404


async def test_version_and_label_together_is_a_400(http: httpx2.AsyncClient) -> None:
    response = await get(http, "text", label="production", version=1)

    assert response.status_code == 400
    assert response.json() == {
        "message": "Cannot specify both version and label",
        "error": "InvalidRequestError",
    }


async def test_version_that_is_not_a_number_is_a_400(http: httpx2.AsyncClient) -> None:
    response = await get(http, "text", version="one")

    assert response.status_code == 400
    assert response.json()["message"] == "Invalid request data"


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("nope", {}, "Prompt not found: 'nope' with label 'production'"),
        ("text", {"label": "staging"}, "Prompt not found: 'text' with label 'staging'"),
        ("text", {"version": 9}, "Prompt not found: 'text' with version 9"),
        ("a/b", {}, "Prompt not found: 'a/b' with label 'production'"),
    ],
)
async def test_not_found_body(
    http: httpx2.AsyncClient, name: str, params: dict[str, Any], message: str
) -> None:
    response = await get(http, name, **params)

    assert response.status_code == 404
    assert response.json() == {"message": message, "error": "LangfuseNotFoundError"}


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "No authorization header"),
        (
            {
                "authorization": "Basic "
                + base64.b64encode(b"pk-lf-other:" + SECRET_KEY.encode()).decode()
            },
            401,
            "Invalid public key. Confirm that you've configured the correct host.",
        ),
        (
            {
                "authorization": "Basic "
                + base64.b64encode(PUBLIC_KEY.encode() + b":sk-wrong").decode()
            },
            401,
            "Invalid credentials. Confirm that you've configured the correct host.",
        ),
        (
            {"authorization": "Basic !!!"},
            401,
            "Invalid authorization header. Confirm that you've configured the correct host.",
        ),
        ({"authorization": "Token abc"}, 401, "Invalid authorization header"),
        (
            {"authorization": f"Bearer {PUBLIC_KEY}"},
            403,
            "Access denied - need to use basic auth with secret key to GET prompts",
        ),
    ],
)
async def test_auth_failures(
    http: httpx2.AsyncClient, headers: dict[str, str], status: int, message: str
) -> None:
    response = await http.get(PROMPTS + "text", headers=headers)

    assert response.status_code == status
    error = "UnauthorizedError" if status == 401 else "ForbiddenError"
    assert response.json() == {"message": message, "error": error}


async def test_folder_names_encoded_or_raw(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    encoded = await get(http, "folder/sub/text")
    raw = await get(http, "folder/sub/text", raw=True)

    assert encoded.json()["name"] == raw.json()["name"] == "folder/sub/text"
    assert [r.raw_path for r in fake.requests] == [
        b"/api/public/v2/prompts/folder%2Fsub%2Ftext",
        b"/api/public/v2/prompts/folder/sub/text",
    ]
    assert fake.fetches("folder/sub/text") == 2


async def test_legacy_routing_misses_raw_slashes() -> None:
    fake = FakeLangfuse(public_key=PUBLIC_KEY, secret_key=SECRET_KEY, legacy_routing=True)
    fake.add_prompt("a/b", "x", labels=["production"])
    transport = httpx2.ASGITransport(app=fake.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://langfuse.test") as http:
        raw = await get(http, "a/b", raw=True)
        encoded = await get(http, "a/b")

    assert raw.status_code == 404
    assert raw.headers["content-type"].startswith("text/html")
    assert encoded.json()["prompt"] == "x"


async def test_only_get(http: httpx2.AsyncClient) -> None:
    response = await http.post(PROMPTS + "text", auth=AUTH, json={})

    assert response.status_code == 405


# --- counters and knobs ----------------------------------------------------------------------


async def test_fetch_counters(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    fake.add_prompt("p", "x", labels=["production", "staging"])
    await get(http, "p")
    await get(http, "p", label="production")
    await get(http, "p", label="staging")
    await get(http, "p", version=1)
    await get(http, "p", auth=None)  # refused, but still a fetch

    assert fake.fetch_count == 5
    assert fake.fetches("p") == fake.fetches("p", label="production") == 3
    assert fake.fetches("p", label="staging") == 1
    assert fake.fetches("p", version=1) == 1
    assert fake.fetch_counts == {
        ("p", "production", None): 3,
        ("p", "staging", None): 1,
        ("p", None, 1): 1,
    }


async def test_fail_next(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    fake.fail_next(2, 503)

    statuses = [(await get(http, "text")).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 403])
async def test_fail_with(fake: FakeLangfuse, http: httpx2.AsyncClient, status: int) -> None:
    fake.fail_with = status

    responses = [await get(http, "text") for _ in range(3)]

    assert [r.status_code for r in responses] == [status] * 3
    fake.fail_with = None
    assert (await get(http, "text")).status_code == 200


async def test_internal_server_error_body(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    fake.fail_with = 500

    response = await get(http, "text")

    assert response.json() == {
        "message": "Internal Server Error",
        "error": "An unknown error occurred",
    }


@pytest.mark.parametrize("body", [INVALID_JSON, WRONG_SHAPE])
async def test_broken_body(fake: FakeLangfuse, http: httpx2.AsyncClient, body: bytes) -> None:
    fake.broken_body = body

    response = await get(http, "text")

    assert response.status_code == 200
    assert response.content == body
    with pytest.raises(pydantic.ValidationError):
        PROMPT_ADAPTER.validate_json(response.content)


async def test_hold_and_release(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    fake.hold()
    calls = [asyncio.create_task(get(http, "text")) for _ in range(3)]

    await fake.wait_for_held(3)
    assert fake.held == 3
    assert fake.fetch_count == 3
    assert not any(call.done() for call in calls)

    fake.release()
    responses = await asyncio.gather(*calls)

    assert [r.status_code for r in responses] == [200] * 3
    assert fake.held == 0


async def test_hold_twice_then_release_once(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    fake.hold()
    first = asyncio.create_task(get(http, "text"))
    await fake.wait_for_held(1)
    fake.hold()
    second = asyncio.create_task(get(http, "text"))
    await fake.wait_for_held(2)

    fake.release()

    assert [r.status_code for r in await asyncio.gather(first, second)] == [200, 200]


async def test_latency_still_answers(fake: FakeLangfuse, http: httpx2.AsyncClient) -> None:
    fake.latency = 0.001

    assert (await get(http, "text")).status_code == 200


async def test_served_by_uvicorn(fake: FakeLangfuse) -> None:
    async with (
        serve_in_background(fake.app) as base_url,
        httpx2.AsyncClient(base_url=base_url) as http,
    ):
        assert base_url.startswith("http://127.0.0.1:")
        response = await get(http, "folder/sub/text")

    assert response.json()["prompt"] == "In a folder"


# --- prompts embedding prompts, resolved when served -----------------------------------------


async def test_an_embedded_prompt_is_resolved_when_served(
    fake: FakeLangfuse, http: httpx2.AsyncClient
) -> None:
    fake.add_prompt("tone", "Be kind.", labels=["production"])
    fake.add_prompt("tone", "Be brief.", labels=["staging"])
    fake.add_prompt("sign-off", "Bye, @@@langfusePrompt:name=tone|version=1@@@", labels=[])
    fake.add_prompt(
        "composed",
        [
            {"role": "system", "content": "@@@langfusePrompt:name=tone|label=production@@@ Go."},
            {"role": "user", "content": "@@@langfusePrompt:name=sign-off|version=1@@@"},
        ],
        labels=["production"],
    )
    served = (await get(http, "composed")).json()
    assert [m["content"] for m in served["prompt"]] == ["Be kind. Go.", "Bye, Be kind."]
    assert served["resolutionGraph"]["dependencies"][served["id"]] == [
        {"name": "tone", "version": 1},
        {"name": "sign-off", "version": 1},
        {"name": "tone", "version": 1},
    ]
    raw = (await get(http, "composed", resolve="false")).json()
    assert raw["prompt"][0]["content"].startswith("@@@langfusePrompt:name=tone|label=production")
    assert raw["resolutionGraph"] is None
    fake.set_labels("tone", 2, ["production"])
    served = (await get(http, "composed")).json()
    assert served["prompt"][0]["content"] == "Be brief. Go."
