"""Versions and labels in the local folder: latest, production, the highest claim wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompt_middleware.errors import PromptNotFound
from prompt_middleware.stores.local import LocalPromptStore
from tests.stores.local.support import get, write

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
