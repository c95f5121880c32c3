"""A broken file, a conflict between files, or a missing folder: what is served and logged."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog.testing

from prompt_middleware.errors import PromptStoreUnavailable
from prompt_middleware.stores.local import LocalPromptStore
from tests.fakes.clock import FakeClock
from tests.stores.local.support import POLL, get, write


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
