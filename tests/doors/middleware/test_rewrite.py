"""The rewritten body the wrapped app receives (README, "How a request is rewritten")."""

from __future__ import annotations

import httpx2
import structlog

from prompt_middleware import ModelEntry, Settings
from tests.conftest import ClientFactory, RecordingApp
from tests.doors.middleware.helpers import post
from tests.fakes.memory import MemoryStore


async def test_text_prompt_becomes_one_user_message(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    response = await post(
        client,
        {
            "model": "gpt-4o-mini",
            "prompt_id": "greeting",
            "prompt_variables": {"name": "Ada", "place": "Langfuse"},
            "messages": [{"role": "user", "content": "ignored"}],
        },
    )
    assert response.status_code == 200
    assert app.last.json() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello Ada, welcome to Langfuse."}],
    }
    assert response.headers["x-prompt-name"] == "greeting"
    assert response.headers["x-prompt-version"] == "1"
    assert response.headers["x-prompt-store"] == "mem"
    assert response.headers["x-prompt-cache"] == "miss"
    assert float(response.headers["x-prompt-middleware-overhead-ms"]) >= 0


async def test_untouched_fields_are_copied_byte_for_byte(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    body = (
        b'{"model":"gpt-4o","prompt_id":"greeting","prompt_variables":{"name":"x"},'
        b'"seed":12345678901234567890123,"temperature":1e-7,"user":"caf\\u00e9 \xc3\xa9",'
        b'"metadata":{"deep":[1,{"a":[true,null,-0.0]}]},"stream":true}'
    )
    await post(client, body)
    sent = app.last.body
    for fragment in (
        b'"seed":12345678901234567890123',
        b'"temperature":1e-7',
        b'"user":"caf\\u00e9 \xc3\xa9"',
        b'"metadata":{"deep":[1,{"a":[true,null,-0.0]}]}',
        b'"stream":true',
    ):
        assert fragment in sent
    assert b"prompt_" not in sent


async def test_version_and_label_select_the_prompt(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    base = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "B"}}
    await post(client, {**base, "prompt_version": 2})
    assert app.last.json()["messages"][0]["content"] == "Hi B (v2)"
    await post(client, {**base, "prompt_version": "2"})
    assert app.last.json()["messages"][0]["content"] == "Hi B (v2)"
    response = await post(client, {**base, "prompt_label": "staging"})
    assert response.headers["x-prompt-version"] == "2"


async def test_chat_prompt_messages_placeholder_takes_the_client_messages(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    history = [
        {"role": "user", "content": "Where is my {{product}}?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "track", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
    ]
    await post(
        client,
        {
            "model": "ignored",
            "prompt_id": "support/answer",
            "prompt_variables": {"product": "parcel"},
            "messages": history,
        },
    )
    sent = app.last.json()
    assert sent["messages"] == [
        {"role": "system", "content": "You help with parcel."},
        history[0],  # the client's own messages go in as sent, never templated
        history[1],
        history[2],
    ]


async def test_config_model_and_parameters_win_by_default(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    await post(
        client,
        {
            "model": "gpt-3.5",
            "prompt_id": "support/answer",
            "temperature": 0.9,
            "top_p": 0.5,
            "messages": [],
            "prompt_variables": {"product": "x"},
        },
    )
    sent = app.last.json()
    assert sent["model"] == "gpt-4o"
    assert sent["temperature"] == 0.2
    assert sent["max_tokens"] == 300
    assert sent["top_p"] == 0.5
    assert "notes" not in sent


async def test_request_parameters_win_when_configured(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(
        Settings(default_store="mem", param_precedence="request"), stores={"mem": store}
    )
    await post(
        client,
        {
            "model": "gpt-3.5",
            "prompt_id": "support/answer",
            "temperature": 0.9,
            "messages": [],
            "prompt_variables": {"product": "x"},
        },
    )
    sent = app.last.json()
    assert (sent["temperature"], sent["max_tokens"], sent["model"]) == (0.9, 300, "gpt-4o")


async def test_text_prompt_role_and_append_mode(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(
        Settings(default_store="mem", text_prompt_role="system", client_messages="append"),
        stores={"mem": store},
    )
    await post(
        client,
        {
            "model": "m",
            "prompt_id": "greeting",
            "prompt_variables": {"name": "C", "place": "P"},
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert app.last.json()["messages"] == [
        {"role": "system", "content": "Hello C, welcome to P."},
        {"role": "user", "content": "hi"},
    ]


async def test_placeholder_variables_and_empty_placeholder(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    shots = [{"role": "user", "content": "2+2"}, {"role": "assistant", "content": "4"}]
    await post(
        client,
        {
            "model": "m",
            "prompt_id": "fewshot",
            "prompt_variables": {"examples": shots, "question": "3+3"},
        },
    )
    assert app.last.json()["messages"] == [
        {"role": "system", "content": "Answer."},
        *shots,
        {"role": "user", "content": "3+3"},
    ]
    await post(
        client,
        {
            "model": "m",
            "prompt_id": "fewshot",
            "prompt_variables": {"examples": [], "question": "q"},
        },
    )
    assert len(app.last.json()["messages"]) == 2


async def test_store_prefix_and_provider_prefix_are_removed(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(Settings(), stores={"mem": store})
    await post(
        client,
        {
            "model": "mem/openai/gpt-4o-mini",
            "prompt_id": "greeting",
            "prompt_variables": {"name": "D", "place": "E"},
        },
    )
    assert app.last.json()["model"] == "gpt-4o-mini"


async def test_store_prefix_without_prompt_is_stripped_and_not_managed(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    response = await post(client, {"model": "mem/gpt-4o", "messages": []})
    assert app.last.json() == {"model": "gpt-4o", "messages": []}
    assert "x-prompt-name" not in response.headers


async def test_model_list_entry_supplies_prompt_model_and_defaults(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    entries = (
        ModelEntry(
            model_name="support-bot",
            model="mem/gpt-4o-mini",
            prompt_id="greeting",
            prompt_label="staging",
            params={"temperature": 0.3, "seed": 7},
        ),
        ModelEntry(model_name="plain", model="openai/gpt-4.1", params={"temperature": 0.1}),
    )
    client = make_client(Settings(model_list=entries), stores={"mem": store})
    response = await post(
        client, {"model": "support-bot", "seed": 1, "prompt_variables": {"name": "F"}}
    )
    assert app.last.json() == {
        "model": "gpt-4o-mini",
        "seed": 1,
        "temperature": 0.3,
        "messages": [{"role": "user", "content": "Hi F (v2)"}],
    }
    assert response.headers["x-prompt-version"] == "2"
    response = await post(client, {"model": "plain", "messages": []})
    assert app.last.json() == {"model": "gpt-4.1", "messages": [], "temperature": 0.1}
    assert "x-prompt-name" not in response.headers


async def test_missing_variables_stay_as_written_and_are_logged(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    with structlog.testing.capture_logs() as logs:
        await post(
            client, {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "H"}}
        )
    assert app.last.json()["messages"][0]["content"] == "Hello H, welcome to {{place}}."
    warning = next(log for log in logs if log["event"] == "prompt_variables_missing")
    assert warning["variables"] == ["place"]
    assert warning["log_level"] == "warning"
