"""Compose: the client's messages copied as sent into the rendered prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import msgspec
import pytest

from prompt_middleware import Settings
from prompt_middleware.engine import RewriteEngine
from prompt_middleware.settings import ModelEntry, PromptBinding
from tests.conftest import ClientFactory, RecordingApp
from tests.engine.helpers import (
    SYSTEM,
    error_body,
    managed,
    post,
    sent_messages,
)
from tests.fakes.memory import MemoryStore, text_prompt

# --- 1. client messages are copied as sent -------------------------------------------------

ODD_SPACING = b' {"role":"user","content":"hi"} ,\n {"role":"user","content":"x"} '


async def test_client_messages_keep_their_bytes_inside_the_prompt_messages(
    client: httpx2.AsyncClient, app: RecordingApp
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
    client: httpx2.AsyncClient, app: RecordingApp, array: bytes
) -> None:
    response = await post(client, b'{"model":"m","prompt_id":"chat","messages": ' + array + b"}")
    assert response.status_code == 200
    assert app.last.body == b'{"model":"m","messages":[' + SYSTEM + b"]}"
    assert sent_messages(app) == [{"role": "system", "content": "Be brief."}]


async def test_null_messages_are_absent_so_the_placeholder_is_unfilled(
    client: httpx2.AsyncClient, app: RecordingApp
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
    client: httpx2.AsyncClient, app: RecordingApp, value: bytes
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
    client: httpx2.AsyncClient, app: RecordingApp, array: bytes, expected: list[Any]
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


# --- parameter precedence: entry -> request -> prompt ---------------------------------------

PARAMS_PROMPT = text_prompt(
    "tuned", "Hi", config={"model": "openai/gpt-4.1", "temperature": 0.9, "top_p": 0.5}
)
ENTRY = ModelEntry(
    model_name="bot",
    model="mem/gpt-4o",
    prompt_id="tuned",
    params={"temperature": 0.1, "max_tokens": 10, "seed": 1},
)


async def compose_body(settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    engine = RewriteEngine(settings, stores={"mem": MemoryStore(PARAMS_PROMPT)})
    try:
        result = await managed(engine, body)
    finally:
        await engine.aclose()
    decoded: dict[str, Any] = msgspec.json.decode(result.body)
    return decoded


async def test_the_prompt_beats_the_request_which_beats_the_entry() -> None:
    body = await compose_body(
        Settings(model_list=(ENTRY,)), {"model": "bot", "temperature": 0.5, "max_tokens": 20}
    )
    assert body == {
        "model": "gpt-4.1",  # the prompt's, provider prefix removed
        "temperature": 0.9,  # prompt over request over entry
        "max_tokens": 20,  # request over entry
        "seed": 1,  # the entry's default
        "top_p": 0.5,  # the prompt's
        "messages": [{"role": "user", "content": "Hi"}],
    }


async def test_with_request_precedence_the_request_beats_the_prompt() -> None:
    settings = Settings(model_list=(ENTRY,), param_precedence="request")
    body = await compose_body(settings, {"model": "bot", "temperature": 0.5})
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.5, 0.5, 10)


async def test_a_binding_can_keep_the_prompt_model_and_params_out(tmp_path: Path) -> None:
    binding = PromptBinding(
        prompt_id="tuned",
        integration="dotprompt",
        ignore_prompt_manager_model=True,
        ignore_prompt_manager_optional_params=True,
    )
    (tmp_path / "tuned.yaml").write_text("prompt: Hi\nconfig: {model: gpt-4.1, temperature: 0.9}\n")
    settings = Settings(prompts_dir=str(tmp_path), prompts=(binding,))
    body = await compose_body(settings, {"model": "gpt-4o", "prompt_id": "tuned", "seed": 2})
    assert body == {"model": "gpt-4o", "seed": 2, "messages": [{"role": "user", "content": "Hi"}]}


async def test_without_a_prompt_only_the_model_and_the_entry_defaults_change() -> None:
    entry = ModelEntry(model_name="plain", model="mem/openai/gpt-4o", params={"seed": 3})
    engine = RewriteEngine(Settings(model_list=(entry,)), stores={"mem": MemoryStore()})
    result = await engine.rewrite(b'{"model":"plain","messages":[],"seed":4,"user":"u"}')
    await engine.aclose()
    assert result is not None
    assert result.body == b'{"model":"gpt-4o","messages":[],"seed":4,"user":"u"}'
    assert (result.model, result.entry, result.headers) == ("gpt-4o", entry, ())
