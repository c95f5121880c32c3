"""``name.vN.prompt`` is version N of ``name``: by ``prompt_id: "name.vN"``, with or without a
label, and by ``prompt_version: N``, as LiteLLM serves it; ``name.prompt`` is the latest."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from tests.conftest import RecordingApp
from tests.stores.local.dotprompt.support import URL, send


@pytest.mark.parametrize(
    "fields",
    [
        {"prompt_id": "chat_prompt.v1"},
        {"prompt_id": "chat_prompt.v1", "prompt_label": "production"},
        {"prompt_id": "chat_prompt.v1", "prompt_label": "staging"},
        {"prompt_id": "chat_prompt.v1", "prompt_version": 1},
        {"prompt_id": "chat_prompt", "prompt_version": 1},
        {"prompt_id": "chat_prompt", "prompt_version": "1"},
    ],
)
async def test_a_versioned_file_by_name_or_by_version(
    client: httpx2.AsyncClient, app: RecordingApp, fields: dict[str, Any]
) -> None:
    body = {"model": "dotprompt/x", "prompt_variables": {"user_message": "Test v1"}, **fields}
    response = await client.post(URL, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-prompt-version"] == "1"
    assert app.last.json() == {
        "model": "gpt-3.5-turbo",
        "messages": [{"role": "user", "content": "Version 1: Test v1"}],
        "temperature": 0.5,
    }


async def test_the_base_file_is_the_latest_and_production_version(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    for label in (None, "production", "latest"):
        fields = {} if label is None else {"prompt_label": label}
        variables = {"user_message": "Hi"}
        response = await send(client, "chat_prompt", prompt_variables=variables, **fields)
        assert response.headers["x-prompt-version"] == "3"
        assert app.last.json()["model"] == "gpt-4"
    await send(client, "chat_prompt.v2", prompt_variables={"user_message": "Test v2"})
    assert app.last.json()["messages"] == [{"role": "user", "content": "Version 2: Test v2"}]


@pytest.mark.parametrize(
    "fields",
    [
        {"prompt_id": "chat_prompt.v7"},
        {"prompt_id": "chat_prompt.v1", "prompt_version": 2},
        {"prompt_id": "chat_prompt", "prompt_version": 7},
    ],
)
async def test_a_version_there_is_no_file_for_is_not_found(
    client: httpx2.AsyncClient, app: RecordingApp, fields: dict[str, Any]
) -> None:
    body = {"model": "dotprompt/x", "prompt_variables": {"user_message": "x"}, **fields}
    response = await client.post(URL, json=body)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "prompt_not_found"
    assert app.requests == []
