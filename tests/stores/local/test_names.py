"""Prompt names are paths below the folder; nothing outside it is ever served."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompt_middleware.errors import InvalidPromptRequest, PromptNotFound
from prompt_middleware.stores.local import LocalPromptStore
from tests.stores.local.support import count_scans, get, write


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
