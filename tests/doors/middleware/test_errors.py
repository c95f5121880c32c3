"""Errors answered as OpenAI-shaped JSON (README, "Errors"), through the middleware."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from prompt_middleware import Settings
from tests.conftest import ClientFactory, RecordingApp
from tests.doors.middleware.helpers import error_of, post
from tests.fakes.memory import MemoryStore, text_prompt, unavailable


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
    client: httpx2.AsyncClient, app: RecordingApp, body: bytes, param: str | None, fragment: str
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
    client: httpx2.AsyncClient, app: RecordingApp, body: dict[str, Any], param: str, fragment: str
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


async def test_unknown_prompt_is_404(client: httpx2.AsyncClient) -> None:
    response = await post(client, {"model": "m", "prompt_id": "nope", "prompt_label": "beta"})
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "prompt_not_found"
    assert "'nope'" in error["message"]
    assert "beta" in error["message"]


async def test_store_down_without_stale_copy_is_502(
    client: httpx2.AsyncClient, store: MemoryStore
) -> None:
    store.failure = unavailable()
    response = await post(client, {"model": "m", "prompt_id": "greeting"})
    assert response.status_code == 502
    assert error_of(response)["code"] == "prompt_store_unavailable"


async def test_store_that_raises_anything_else_is_502_without_details(
    client: httpx2.AsyncClient, store: MemoryStore
) -> None:
    store.failure = RuntimeError("secret-token-123 leaked?")
    response = await post(client, {"model": "m", "prompt_id": "greeting"})
    assert response.status_code == 502
    assert "secret-token-123" not in response.text


async def test_absurdly_deep_json_is_a_400_not_a_500(client: httpx2.AsyncClient) -> None:
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
