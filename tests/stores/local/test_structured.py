"""YAML and JSON prompt files: the fields of a Langfuse prompt (README "Prompt stores")."""

from __future__ import annotations

import json
from pathlib import Path

from prompt_middleware.prompts import ChatMessage, Placeholder, Prompt
from prompt_middleware.stores.local import LocalPromptStore
from tests.stores.local.support import get, write


async def test_yaml_text_prompt(folder: Path, store: LocalPromptStore) -> None:
    write(
        folder,
        "greet.yaml",
        "name: greet\n"
        "type: text\n"
        "prompt: 'Hello {{name}}'\n"
        "config: {model: gpt-4o-mini, temperature: 0.2}\n"
        "labels: [production, staging]\n"
        "version: 4\n",
    )
    assert await get(store, "greet") == Prompt(
        name="greet",
        version=4,
        type="text",
        prompt="Hello {{name}}",
        config={"model": "gpt-4o-mini", "temperature": 0.2},
        labels=("production", "staging", "latest"),
    )


async def test_yaml_chat_prompt_with_placeholder_and_defaults(
    folder: Path, store: LocalPromptStore
) -> None:
    write(
        folder,
        "support/answer.yml",
        "prompt:\n"
        "  - role: system\n"
        "    content: You answer questions about {{product}}.\n"
        "  - type: placeholder\n"
        "    name: messages\n"
        "  - {role: user, content: '{{question}}', type: chatmessage}\n",
    )
    prompt = await get(store, "support/answer")
    assert prompt == Prompt(
        name="support/answer",
        version=1,
        type="chat",
        prompt=(
            ChatMessage(role="system", content="You answer questions about {{product}}."),
            Placeholder(name="messages"),
            ChatMessage(role="user", content="{{question}}"),
        ),
        config={},
        labels=("production", "latest"),
    )


async def test_yaml_config_is_normalised_to_json(folder: Path, store: LocalPromptStore) -> None:
    write(folder, "p.yaml", "prompt: x\nconfig: {released: 2024-05-01, stop: [a]}\n")
    assert (await get(store, "p")).config == {"released": "2024-05-01", "stop": ["a"]}


async def test_json_chat_prompt(folder: Path, store: LocalPromptStore) -> None:
    body = {
        "type": "chat",
        "prompt": [{"role": "system", "content": "Be brief."}],
        "config": {"model": "gpt-4o", "response_format": {"type": "json_object"}},
    }
    write(folder, "brief.json", json.dumps(body))
    prompt = await get(store, "brief")
    assert prompt.type == "chat"
    assert prompt.prompt == (ChatMessage(role="system", content="Be brief."),)
    assert prompt.config == {"model": "gpt-4o", "response_format": {"type": "json_object"}}


async def test_a_prompt_copied_from_langfuse_loads(folder: Path, store: LocalPromptStore) -> None:
    # The shape of GET /api/public/v2/prompts/{name}, bookkeeping fields and all.
    body = {
        "id": "clx1",
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:00.000Z",
        "projectId": "p1",
        "createdBy": "API",
        "name": "movie-critic",
        "version": 3,
        "type": "text",
        "prompt": "As a {{criticLevel}} critic, do you like {{movie}}?",
        "config": {"model": "gpt-4o"},
        "labels": ["production", "latest"],
        "tags": ["movies"],
        "commitMessage": None,
        "isActive": None,
        "resolutionGraph": None,
    }
    write(folder, "movie-critic.json", json.dumps(body))
    prompt = await get(store, "movie-critic")
    assert (prompt.version, prompt.labels) == (3, ("production", "latest"))
    assert prompt.prompt == body["prompt"]


async def test_empty_text_prompt_and_null_config(folder: Path, store: LocalPromptStore) -> None:
    write(folder, "empty.yaml", "prompt: ''\nconfig: null\nlabels: null\n")
    prompt = await get(store, "empty")
    assert (prompt.prompt, prompt.config, prompt.type) == ("", {}, "text")
