"""Our errors are answered (the SDK raises its status error); the wrapped transport's propagate."""

from __future__ import annotations

from typing import Any, cast

import httpcore2
import openai
import pytest
import respx
import structlog

from prompt_middleware import Settings
from prompt_middleware.transport import PromptTransport
from tests.doors.transport.helpers import CHAT_URL, MakeClient, error_body, http_client_of
from tests.fakes.memory import MemoryStore, unavailable


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
    router.post(CHAT_URL).mock(side_effect=httpcore2.ConnectError("refused"))
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(
            model="mem/m",
            messages=[],
            extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "I"}},
        )
