"""LocalPromptStore: file formats, versions and labels, safety, and live reload."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from prompt_middleware.errors import InvalidPromptRequest, PromptNotFound, PromptStoreUnavailable
from prompt_middleware.input_schema import InputSchema
from prompt_middleware.prompts import ChatMessage, Placeholder, Prompt, PromptQuery
from prompt_middleware.stores import PromptStore
from prompt_middleware.stores import local as local_module
from prompt_middleware.stores.local import LocalPromptStore

POLL = 0.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "prompts"
    path.mkdir()
    return path


@pytest.fixture
def store(folder: Path, clock: FakeClock) -> LocalPromptStore:
    return LocalPromptStore(folder, poll_interval=POLL, clock=clock)


_mtime_steps = itertools.count(1)


def write(folder: Path, relative: str, text: str) -> Path:
    """Write a file with an mtime of its own, so change detection never depends on timing."""
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    mtime_ns = 1_600_000_000_000_000_000 + next(_mtime_steps) * 1_000_000_000
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


async def get(
    store: LocalPromptStore, name: str, *, label: str | None = None, version: int | None = None
) -> Prompt:
    return await store.get_prompt(PromptQuery(name, label=label, version=version))


def count_scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap the folder scan; returns the list of thread ids the scans ran in."""
    threads: list[int] = []
    scan = local_module._scan_folder

    def counting(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return scan(*args)

    monkeypatch.setattr(local_module, "_scan_folder", counting)
    return threads


def test_is_a_prompt_store(store: LocalPromptStore) -> None:
    assert isinstance(store, PromptStore)


def test_negative_poll_interval_is_refused(folder: Path) -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        LocalPromptStore(folder, poll_interval=-1)


# -- YAML and JSON ----------------------------------------------------------------------


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


# -- versions and labels -----------------------------------------------------------------

VERSIONS_MAPPING = """\
name: answer
versions:
  - version: 1
    prompt: one
    labels: [production]
  - version: 2
    prompt: two
    labels: [staging]
    config: {model: gpt-4o}
  - version: 3
    prompt: three
"""

VERSIONS_LIST = """\
- {version: 3, prompt: three}
- {version: 1, prompt: one, labels: [production]}
- {version: 2, prompt: two, labels: [staging], config: {model: gpt-4o}}
"""


@pytest.mark.parametrize("text", [VERSIONS_MAPPING, VERSIONS_LIST], ids=["mapping", "list"])
async def test_versions_and_labels(folder: Path, store: LocalPromptStore, text: str) -> None:
    write(folder, "answer.yaml", text)

    production = await get(store, "answer")
    assert (production.prompt, production.version, production.labels) == (
        "one",
        1,
        ("production",),
    )
    assert await get(store, "answer", label="production") == production

    staging = await get(store, "answer", label="staging")
    assert (staging.prompt, staging.labels, staging.config) == (
        "two",
        ("staging",),
        {"model": "gpt-4o"},
    )

    latest = await get(store, "answer", label="latest")
    assert (latest.prompt, latest.version, latest.labels) == ("three", 3, ("latest",))

    pinned = await get(store, "answer", version=2)
    assert pinned == staging


async def test_without_labels_the_highest_version_is_production(
    folder: Path, store: LocalPromptStore
) -> None:
    write(
        folder, "a.yaml", "versions:\n- {version: 1, prompt: one}\n- {version: 7, prompt: seven}\n"
    )
    prompt = await get(store, "a")
    assert (prompt.version, prompt.labels) == (7, ("production", "latest"))
    assert (await get(store, "a", version=1)).labels == ()


async def test_the_highest_version_claiming_a_label_has_it(
    folder: Path, store: LocalPromptStore
) -> None:
    write(
        folder,
        "a.yaml",
        "- {version: 1, prompt: one, labels: [production, beta]}\n"
        "- {version: 2, prompt: two, labels: [production]}\n"
        "- {version: 3, prompt: three, labels: [latest]}\n",
    )
    assert (await get(store, "a")).version == 2
    assert (await get(store, "a", version=1)).labels == ("beta",)
    assert (await get(store, "a", version=2)).labels == ("production",)
    # A 'latest' written in a file is ignored: latest is always the highest version.
    assert (await get(store, "a", version=3)).labels == ("latest",)


async def test_unknown_prompt_label_or_version_is_not_found(
    folder: Path, store: LocalPromptStore
) -> None:
    write(folder, "a.yaml", "- {version: 1, prompt: one, labels: [production]}\n")

    with pytest.raises(PromptNotFound) as missing:
        await get(store, "nope")
    assert missing.value.param == "prompt_id"
    assert "'nope' with label 'production'" in missing.value.message

    with pytest.raises(PromptNotFound) as no_label:
        await get(store, "a", label="staging")
    assert no_label.value.param == "prompt_label"
    assert "'a' with label 'staging'" in no_label.value.message
    assert "latest, production" in no_label.value.message

    with pytest.raises(PromptNotFound) as no_version:
        await get(store, "a", version=2)
    assert no_version.value.param == "prompt_version"
    assert "'a' version 2" in no_version.value.message
    assert "versions are 1" in no_version.value.message


# -- .prompt files -----------------------------------------------------------------------


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
        input_schema=InputSchema.parse({"text": "string"}),
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
    # LiteLLM also addresses a version file by its stem.
    assert (await get(store, "chat_prompt.v2")).prompt == "Version 2: {{m}}"


async def test_dotprompt_version_files_alone(folder: Path, store: LocalPromptStore) -> None:
    write(folder, "p.v1.prompt", "one")
    write(folder, "p.v2.prompt", "---\nversion: 2\n---\ntwo")
    assert (await get(store, "p")).prompt == "two"
    assert (await get(store, "p", version=1)).prompt == "one"
    with pytest.raises(PromptNotFound):
        await get(store, "p.v3")


# -- names -------------------------------------------------------------------------------


async def test_names_come_from_paths(folder: Path, store: LocalPromptStore) -> None:
    write(folder, "support/answer.yaml", "prompt: a")
    write(folder, "support/billing/refund.json", '{"prompt": "r"}')
    write(folder, "top.prompt", "t")
    write(folder, "dotted.name.yaml", "prompt: d")
    assert (await get(store, "support/answer")).name == "support/answer"
    assert (await get(store, "support/billing/refund")).prompt == "r"
    assert (await get(store, "top")).prompt == "t"
    assert (await get(store, "dotted.name")).prompt == "d"
    for missing in ("answer", "support/answer.yaml", "support", "support/billing/refund.json"):
        with pytest.raises(PromptNotFound):
            await get(store, missing)


async def test_hidden_and_foreign_files_are_ignored(folder: Path, store: LocalPromptStore) -> None:
    write(folder, ".hidden.yaml", "prompt: h")
    write(folder, ".git/config.yaml", "prompt: g")
    write(folder, "team/.drafts/wip.yaml", "prompt: w")
    write(folder, "README.md", "# prompts")
    write(folder, "notes.txt", "not a prompt")
    write(folder, "ok.yaml", "prompt: fine")
    for name in (".hidden", ".git/config", "team/.drafts/wip", "README", "notes"):
        with pytest.raises(PromptNotFound):
            await get(store, name)
    assert store.check() == {}


@pytest.mark.parametrize(
    "name", ["", "../x", "/etc/passwd", "a/../../b", "..", "a\\b", "..\\x", "a\x00b"]
)
async def test_names_that_could_leave_the_folder_are_refused_before_any_disk_access(
    store: LocalPromptStore, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    scans = count_scans(monkeypatch)
    with pytest.raises(InvalidPromptRequest) as refused:
        await get(store, name)
    assert refused.value.param == "prompt_id"
    assert "not a valid prompt name" in refused.value.message
    assert scans == []


async def test_symlinks_out_of_the_folder_are_not_served(
    tmp_path: Path, folder: Path, store: LocalPromptStore
) -> None:
    outside = tmp_path / "outside"
    write(outside, "secret.yaml", "prompt: secret")
    (folder / "leak.yaml").symlink_to(outside / "secret.yaml")
    (folder / "leakdir").symlink_to(outside, target_is_directory=True)
    (folder / "dangling.yaml").symlink_to(tmp_path / "missing.yaml")
    write(folder, "real/inner.yaml", "prompt: inner")
    (folder / "alias.yaml").symlink_to(folder / "real" / "inner.yaml")
    (folder / "linked").symlink_to(folder / "real", target_is_directory=True)
    (folder / "real" / "loop").symlink_to(folder, target_is_directory=True)

    for name in ("leak", "leakdir/secret", "dangling"):
        with pytest.raises(PromptNotFound):
            await get(store, name)
    # Links that stay inside the folder are followed, except back up (that would loop).
    assert (await get(store, "alias")).prompt == "inner"
    assert (await get(store, "linked/inner")).prompt == "inner"
    with pytest.raises(PromptNotFound):
        await get(store, "real/loop/real/inner")


# -- broken files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "text", "reason"),
    [
        ("bad.yaml", "prompt: [unclosed\n", "bad.yaml: is not valid YAML: "),
        ("bad.json", '{"prompt": ', "bad.json: is not valid JSON"),
        ("bad.yaml", "prompt: 5\n", "bad.yaml: 'prompt': expected `str | array`, got `int`"),
        ("bad.yaml", "just a string\n", "bad.yaml: must hold a prompt"),
        ("bad.yaml", "prompt: x\nlables: [production]\n", "unknown field `lables`"),
        ("bad.yaml", "prompt: x\nversion: 0\n", "bad.yaml: 'version': expected `int` >= 1"),
        ("bad.yaml", "prompt: x\nlabels: production\n", "bad.yaml: 'labels': expected `array"),
        ("bad.yaml", "type: chat\nprompt: hi\n", "'prompt' must be a list of messages"),
        ("bad.yaml", "type: text\nprompt: [{role: user, content: x}]\n", "must be a string"),
        ("bad.yaml", "prompt: [{role: user}]\n", "bad.yaml: 'prompt' message 1: "),
        ("bad.yaml", "prompt: [hello]\n", "'prompt' message 1: must be a mapping"),
        ("bad.yaml", "prompt: [{type: placeholder}]\n", "'prompt' message 1: "),
        ("bad.yaml", "name: other\nprompt: x\n", "bad.yaml: 'name' is 'other'"),
        ("bad.yaml", "- {prompt: a}\n", "bad.yaml: version entry 1: 'version' is required"),
        ("bad.yaml", "- {version: 1, prompt: a}\n- {version: 1, prompt: b}\n", "appears more"),
        ("bad.yaml", "versions: []\n", "bad.yaml: holds no versions"),
        ("bad.prompt", "---\nmodel: x\nno closing fence\n", "bad.prompt: the front matter"),
        ("bad.prompt", "---\n- a list\n---\nbody\n", "must be a YAML mapping"),
        ("bad.prompt", "---\nmodel: [x\n---\nbody\n", "bad.prompt: front matter is not valid"),
        ("bad.prompt", "---\nversion: two\n---\nbody\n", "bad.prompt: 'version': expected"),
        ("bad.v2.prompt", "---\nversion: 3\n---\nbody\n", "file name says version 2"),
        ("bad.prompt", "User:\nAssistant:   \n", "the role markers hold no text"),
    ],
)
async def test_a_broken_file_is_unavailable_and_leaves_the_others_alone(
    folder: Path, store: LocalPromptStore, relative: str, text: str, reason: str
) -> None:
    write(folder, "good.yaml", "prompt: fine\n")
    write(folder, relative, text)
    with pytest.raises(PromptStoreUnavailable) as broken:
        await get(store, "bad")
    assert "prompt 'bad' cannot be served: " in broken.value.message
    assert reason in broken.value.message
    assert str(folder) not in broken.value.message  # relative paths only
    assert (await get(store, "good")).prompt == "fine"


async def test_the_spec_example_message(folder: Path, store: LocalPromptStore) -> None:
    write(
        folder,
        "support/answer.yaml",
        "versions:\n"
        "- {version: 1, prompt: [{role: user, content: hi}]}\n"
        "- {version: 2, type: chat, prompt: hi}\n",
    )
    with pytest.raises(PromptStoreUnavailable) as broken:
        await get(store, "support/answer")
    assert broken.value.message.endswith(
        "support/answer.yaml: version 2: 'prompt' must be a list of messages for a chat prompt"
    )


@pytest.mark.parametrize(
    "files",
    [
        ("a.json", "a.yaml"),
        ("a.prompt", "a.yaml"),
        ("a.v2.prompt", "a.yaml"),
        ("a.yaml", "a.yml"),
    ],
)
async def test_two_files_for_one_name_are_a_conflict(
    folder: Path, store: LocalPromptStore, files: tuple[str, str]
) -> None:
    for relative in files:
        if relative.endswith(".prompt"):
            write(folder, relative, "x")
        elif relative.endswith(".json"):
            write(folder, relative, '{"prompt": "x"}')
        else:
            write(folder, relative, "prompt: x")
    write(folder, "b.yaml", "prompt: fine")
    with pytest.raises(PromptStoreUnavailable) as conflict:
        await get(store, "a")
    assert f"{files[0]} and {files[1]} all define prompt 'a'" in conflict.value.message
    assert (await get(store, "b")).prompt == "fine"


async def test_two_files_for_one_version_are_a_conflict(
    folder: Path, store: LocalPromptStore
) -> None:
    write(folder, "a.prompt", "---\nversion: 2\n---\nbase")
    write(folder, "a.v2.prompt", "two")
    with pytest.raises(PromptStoreUnavailable, match=r"a.prompt and a.v2.prompt both define"):
        await get(store, "a")


async def test_a_broken_file_is_logged_once_per_change(
    folder: Path, store: LocalPromptStore, clock: FakeClock
) -> None:
    path = write(folder, "bad.yaml", "prompt: 5\n")
    write(folder, "good.yaml", "prompt: fine\n")
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(PromptStoreUnavailable):
                await get(store, "bad")
            await get(store, "good")
            clock.advance(POLL)
        write(folder, "bad.yaml", "prompt: [5]\n")
        for _ in range(2):
            with pytest.raises(PromptStoreUnavailable):
                await get(store, "bad")
            clock.advance(POLL)
    assert path.exists()
    warnings = [entry for entry in logs if entry["event"] == "prompt_file_invalid"]
    assert [(w["log_level"], w["path"]) for w in warnings] == [
        ("warning", "bad.yaml"),
        ("warning", "bad.yaml"),
    ]
    assert "'prompt': expected" in warnings[0]["reason"]
    assert "'prompt' message 1" in warnings[1]["reason"]


async def test_a_name_conflict_is_logged_once(
    folder: Path, store: LocalPromptStore, clock: FakeClock
) -> None:
    write(folder, "a.yaml", "prompt: x")
    write(folder, "a.json", '{"prompt": "x"}')
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(PromptStoreUnavailable):
                await get(store, "a")
            clock.advance(POLL)
    assert [(entry["event"], entry["path"]) for entry in logs] == [
        ("prompt_file_invalid", "a.json, a.yaml")
    ]


async def test_check_lists_the_prompts_that_cannot_be_served(
    folder: Path, store: LocalPromptStore
) -> None:
    write(folder, "good.yaml", "prompt: fine")
    write(folder, "team/bad.yaml", "prompt: 5")
    assert list(store.check()) == ["team/bad"]


# -- the folder itself -------------------------------------------------------------------


async def test_a_missing_folder_names_the_setting(tmp_path: Path, clock: FakeClock) -> None:
    missing = tmp_path / "nowhere"
    store = LocalPromptStore(missing, poll_interval=POLL, clock=clock)
    with pytest.raises(PromptStoreUnavailable) as unavailable:
        await get(store, "a")
    assert "PROMPT_MIDDLEWARE_PROMPTS_DIR" in unavailable.value.message
    assert str(missing) in unavailable.value.message
    assert "does not exist" in unavailable.value.message
    with pytest.raises(PromptStoreUnavailable):
        store.check()

    write(missing, "a.yaml", "prompt: now here")
    clock.advance(POLL)
    assert (await get(store, "a")).prompt == "now here"


async def test_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    not_a_folder = write(tmp_path, "prompts.yaml", "prompt: x")
    store = LocalPromptStore(not_a_folder)
    with pytest.raises(PromptStoreUnavailable, match="is not a folder"):
        await get(store, "a")


# -- live reload -------------------------------------------------------------------------


async def test_edits_are_picked_up_after_the_poll_interval_and_not_before(
    folder: Path, store: LocalPromptStore, clock: FakeClock
) -> None:
    write(folder, "a.yaml", "prompt: one")
    write(folder, "gone.yaml", "prompt: bye")
    assert (await get(store, "a")).prompt == "one"
    assert (await get(store, "gone")).prompt == "bye"

    write(folder, "a.yaml", "prompt: two")
    write(folder, "new.yaml", "prompt: hello")
    (folder / "gone.yaml").unlink()

    clock.advance(POLL / 2)
    assert (await get(store, "a")).prompt == "one"
    assert (await get(store, "gone")).prompt == "bye"
    with pytest.raises(PromptNotFound):
        await get(store, "new")

    clock.advance(POLL / 2)
    assert (await get(store, "a")).prompt == "two"
    assert (await get(store, "new")).prompt == "hello"
    with pytest.raises(PromptNotFound):
        await get(store, "gone")


async def test_a_fixed_file_is_served_again(
    folder: Path, store: LocalPromptStore, clock: FakeClock
) -> None:
    write(folder, "a.yaml", "prompt: [")
    with pytest.raises(PromptStoreUnavailable):
        await get(store, "a")
    write(folder, "a.yaml", "prompt: fixed")
    clock.advance(POLL)
    assert (await get(store, "a")).prompt == "fixed"


async def test_a_replaced_file_with_the_same_mtime_and_size_is_seen(
    folder: Path, store: LocalPromptStore, clock: FakeClock
) -> None:
    # Editors and ConfigMap updates replace a file by renaming a new one over it.
    path = write(folder, "a.yaml", "prompt: one")
    assert (await get(store, "a")).prompt == "one"
    stat = path.stat()
    replacement = write(folder, "a.tmp", "prompt: two")
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)
    clock.advance(POLL)
    assert (await get(store, "a")).prompt == "two"


async def test_only_changed_files_are_parsed_again(
    folder: Path, store: LocalPromptStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    load = local_module._load_file

    def counting(path: str, relative: str, seen: Any) -> Any:
        loads.append(relative)
        return load(path, relative, seen)

    monkeypatch.setattr(local_module, "_load_file", counting)
    write(folder, "a.yaml", "prompt: a")
    write(folder, "b.yaml", "prompt: b")
    await get(store, "a")
    assert sorted(loads) == ["a.yaml", "b.yaml"]

    clock.advance(POLL)
    await get(store, "a")
    assert sorted(loads) == ["a.yaml", "b.yaml"]

    write(folder, "b.yaml", "prompt: bb")
    clock.advance(POLL)
    assert (await get(store, "b")).prompt == "bb"
    assert sorted(loads) == ["a.yaml", "b.yaml", "b.yaml"]


async def test_the_first_call_scans_and_calls_within_the_interval_do_not(
    folder: Path, store: LocalPromptStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = count_scans(monkeypatch)
    write(folder, "a.yaml", "prompt: a")
    for _ in range(3):
        await get(store, "a")
    assert len(scans) == 1
    clock.advance(POLL)
    await get(store, "a")
    assert len(scans) == 2


async def test_concurrent_calls_share_one_scan_that_runs_off_the_event_loop(
    folder: Path, store: LocalPromptStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = count_scans(monkeypatch)
    write(folder, "a.yaml", "prompt: a")
    prompts = await asyncio.gather(*(get(store, "a") for _ in range(20)))
    assert {prompt.prompt for prompt in prompts} == {"a"}
    assert len(scans) == 1
    assert scans[0] != threading.get_ident()


async def test_a_cancelled_caller_does_not_cancel_the_shared_scan(
    folder: Path, store: LocalPromptStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(folder, "a.yaml", "prompt: a")
    started, release = threading.Event(), threading.Event()
    scan = local_module._scan_folder
    scans: list[int] = []

    def blocking(*args: Any) -> Any:
        scans.append(1)
        started.set()
        release.wait(timeout=10)
        return scan(*args)

    monkeypatch.setattr(local_module, "_scan_folder", blocking)
    first = asyncio.create_task(get(store, "a"))
    await asyncio.to_thread(started.wait, 10)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    second = asyncio.create_task(get(store, "a"))
    release.set()
    assert (await second).prompt == "a"
    assert len(scans) == 1
    await store.aclose()


async def test_aclose_waits_for_a_scan_in_flight(
    folder: Path, store: LocalPromptStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(folder, "a.yaml", "prompt: a")
    finished: list[bool] = []
    scan = local_module._scan_folder

    def recording(*args: Any) -> Any:
        result = scan(*args)
        finished.append(True)
        return result

    monkeypatch.setattr(local_module, "_scan_folder", recording)
    caller = asyncio.create_task(get(store, "a"))
    await asyncio.sleep(0)  # one turn of the loop: the caller starts the scan
    assert finished == []
    await store.aclose()
    assert finished == [True]
    assert (await caller).prompt == "a"
