"""LiteLLM's ``.prompt`` files: front matter, role markers, ``name.vN.prompt`` versions."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from prompt_middleware.errors import PromptNotFound
from prompt_middleware.prepare import prepare_prompt
from prompt_middleware.prompts import ChatMessage, Prompt
from prompt_middleware.render import RenderOptions
from prompt_middleware.stores.local import LocalPromptStore
from tests.stores.local.support import get, write


async def test_dotprompt_without_front_matter_is_a_text_prompt(
    folder: Path, store: LocalPromptStore
) -> None:
    write(folder, "plain.prompt", "\n\nSummarise {{text}}.\nNote: be short.\n\n")
    assert await get(store, "plain") == Prompt(
        name="plain",
        version=1,
        type="text",
        prompt="Summarise {{text}}.\nNote: be short.",
        config={},
        labels=("production", "latest"),
        template_language="jinja",
    )


async def test_dotprompt_front_matter_becomes_config(folder: Path, store: LocalPromptStore) -> None:
    write(
        folder,
        "extract.prompt",
        "---\n"
        "model: gpt-4o-mini\n"
        "temperature: 0.7\n"
        "max_tokens: 150\n"
        "labels: [staging]\n"
        "version: 5\n"
        "input:\n  schema:\n    text: string\n"
        "output:\n  format: json\n"
        "---\n"
        "Extract: {{text}}\n",
    )
    prompt = await get(store, "extract", label="staging")
    assert prompt == Prompt(
        name="extract",
        version=5,
        type="text",
        prompt="Extract: {{text}}",
        config={"model": "gpt-4o-mini", "temperature": 0.7, "max_tokens": 150},
        labels=("staging", "latest"),
        template_language="jinja",
        input_schema={"text": "string"},
    )
    with pytest.raises(PromptNotFound):
        await get(store, "extract")  # labelled, but not production


async def test_dotprompt_role_markers_make_a_chat_prompt(
    folder: Path, store: LocalPromptStore
) -> None:
    write(
        folder,
        "chat.prompt",
        "---\nmodel: gpt-4\n---\n"
        "Some context first.\n"
        "SYSTEM: You are a {{persona}}.\n"
        "Keep it short.\n"
        "\n"
        "  user:   {{question}}\n"
        "Assistant:\n"
        "Sure:\n"
        "    indented line\n"
        "User:\n",
    )
    prompt = await get(store, "chat")
    assert prompt.type == "chat"
    assert prompt.config == {"model": "gpt-4"}
    assert prompt.prompt == (
        ChatMessage(role="user", content="Some context first."),
        ChatMessage(role="system", content="You are a {{persona}}.\nKeep it short."),
        ChatMessage(role="user", content="{{question}}"),
        ChatMessage(role="assistant", content="Sure:\n    indented line"),
    )


async def test_litellm_example_file(folder: Path, store: LocalPromptStore) -> None:
    # The example of LiteLLM's dotprompt README ("Multi-turn Conversation").
    write(
        folder,
        "conversation.prompt",
        "---\n"
        "model: gpt-4\n"
        "temperature: 0.8\n"
        "input:\n"
        "  schema:\n"
        "    personality: string\n"
        "    context: string\n"
        "---\n"
        "\n"
        "System: You are a {{personality}}. {{context}}\n"
        "\n"
        "User: Let's start our conversation.\n",
    )
    prompt = await get(store, "conversation")
    assert prompt.config == {"model": "gpt-4", "temperature": 0.8}
    assert prompt.prompt == (
        ChatMessage(role="system", content="You are a {{personality}}. {{context}}"),
        ChatMessage(role="user", content="Let's start our conversation."),
    )


async def test_litellm_versioned_files(folder: Path, store: LocalPromptStore) -> None:
    # LiteLLM: chat_prompt.prompt is the default, chat_prompt.vN.prompt is version N.
    write(folder, "chat_prompt.prompt", "---\nmodel: gpt-4o\n---\nUser: current {{m}}\n")
    write(folder, "chat_prompt.v1.prompt", "---\nmodel: gpt-3.5-turbo\n---\nVersion 1: {{m}}\n")
    write(folder, "chat_prompt.v2.prompt", "---\nmodel: gpt-4\n---\nVersion 2: {{m}}\n")

    default = await get(store, "chat_prompt")
    assert (default.version, default.config) == (3, {"model": "gpt-4o"})
    assert default.labels == ("production", "latest")
    assert (await get(store, "chat_prompt", version=1)).prompt == "Version 1: {{m}}"
    assert (await get(store, "chat_prompt", version=2)).config == {"model": "gpt-4"}
    # LiteLLM also addresses a version file by its stem, whatever the label asked for (the
    # engine asks for production when the request names none).
    for label in (None, "production", "staging"):
        assert (await get(store, "chat_prompt.v2", label=label)).prompt == "Version 2: {{m}}"
    assert (await get(store, "chat_prompt.v2", version=2)).prompt == "Version 2: {{m}}"
    with pytest.raises(PromptNotFound):
        await get(store, "chat_prompt.v2", version=1)


async def test_dotprompt_version_files_alone(folder: Path, store: LocalPromptStore) -> None:
    write(folder, "p.v1.prompt", "one")
    write(folder, "p.v2.prompt", "---\nversion: 2\n---\ntwo")
    assert (await get(store, "p")).prompt == "two"
    assert (await get(store, "p", version=1)).prompt == "one"
    with pytest.raises(PromptNotFound):
        await get(store, "p.v3")


async def test_a_jinja_version_is_plain_data(folder: Path, store: LocalPromptStore) -> None:
    # Copies of prompts are encoded (Redis keeps the last known good one): a .prompt version
    # is data, its template compiled by the engine from its text.
    write(
        folder,
        "greet.prompt",
        "---\ninput:\n  schema: {name: string}\n---\n"
        "{% if formal %}System: Be formal.\n{% endif %}User: Hi {{ name }}",
    )
    prompt = await get(store, "greet")
    decoded = msgspec.json.decode(msgspec.json.encode(prompt))
    assert decoded["template_language"] == "dotprompt"
    assert decoded["input_schema"] == {"name": "string"}
    copy = Prompt(**decoded)
    rendered = prepare_prompt(copy).render({"name": "Ada", "formal": True}, None, RenderOptions())
    assert rendered.messages == [
        {"role": "system", "content": "Be formal."},
        {"role": "user", "content": "Hi Ada"},
    ]
