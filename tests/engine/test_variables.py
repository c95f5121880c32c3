"""``prompt_variables`` limits: entries, bytes and depth, each refused with the setting it
names; the depth gate, and the walk it spares flat variables."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

import prompt_middleware.engine
import prompt_middleware.handoff
import prompt_middleware.report
from prompt_middleware import Settings
from tests.conftest import ClientFactory, RecordingApp
from tests.engine.fake_servers import (
    URL,
)
from tests.engine.helpers import (
    error_body,
    post,
    sent_messages,
)
from tests.engine.limits import (
    LimitsClient,
    assert_limit,
    check_limit,
    limits_clients,
)
from tests.fakes.memory import MemoryStore

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
    client: httpx2.AsyncClient, app: RecordingApp, monkeypatch: pytest.MonkeyPatch
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


@pytest.fixture
async def limits_client() -> AsyncIterator[LimitsClient]:
    async with limits_clients() as make:
        yield make


@pytest.mark.parametrize(
    ("variables", "allowed"),
    [
        ({"a": 1, "b": 2, "name": 3}, True),
        ({"a": 1, "b": 2, "c": 3, "name": 4}, False),
    ],
)
async def test_prompt_variables_entries_limit(
    limits_client: LimitsClient, variables: dict[str, Any], allowed: bool
) -> None:
    await check_limit(
        limits_client(max_variables=3),
        {"prompt_id": "greeting", "prompt_variables": variables},
        allowed,
        "PROMPT_MIDDLEWARE_MAX_VARIABLES)",
    )


@pytest.mark.parametrize(("size", "allowed"), [(100, True), (101, False)])
async def test_prompt_variables_bytes_limit(
    limits_client: LimitsClient, size: int, allowed: bool
) -> None:
    raw = b'{"name":"' + b"x" * (size - 11) + b'"}'
    assert len(raw) == size
    body = b'{"model":"m","prompt_id":"greeting","prompt_variables":' + raw + b"}"
    client = limits_client(max_variables_bytes=100)
    response = await client.post(URL, content=body)
    assert_limit(response, allowed, "PROMPT_MIDDLEWARE_MAX_VARIABLES_BYTES")


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ({"a": {"b": 1}}, True),  # the variables object, then two levels: depth 3
        ({"a": {"b": {"c": 1}}}, False),
        ([[1]], True),
        ([[[1]]], False),
    ],
)
async def test_prompt_variables_depth_limit(
    limits_client: LimitsClient, name: Any, allowed: bool
) -> None:
    await check_limit(
        limits_client(max_variables_depth=3),
        {"prompt_id": "greeting", "prompt_variables": {"name": name}},
        allowed,
        "PROMPT_MIDDLEWARE_MAX_VARIABLES_DEPTH",
    )
