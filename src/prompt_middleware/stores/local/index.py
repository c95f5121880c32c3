"""From parsed files to prompts: versions numbered, labels assigned, lookups answered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable
from prompt_middleware.prompts import DEFAULT_LABEL, Prompt, PromptQuery
from prompt_middleware.stores.local.dotprompt import EXTENSION, VERSION_SUFFIX
from prompt_middleware.stores.local.parsing import FileRecord, Invalid, Version


@dataclass(frozen=True, slots=True)
class Versions:
    """A servable prompt: its versions by number, and the version each label names."""

    by_number: Mapping[int, Prompt]
    by_label: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Broken:
    """A prompt that cannot be served, and why."""

    reason: str


Entry: TypeAlias = Versions | Broken


def lookup(prompts: Mapping[str, Entry], query: PromptQuery) -> Prompt:
    """The version of the prompt ``query`` names, or the error that says why there is none."""
    name = query.name
    wanted_version = query.version
    entry = prompts.get(name)
    if entry is None:
        # LiteLLM addresses ``name.v2.prompt`` as prompt_id "name.v2", whatever the label
        # (the engine asks for ``production`` when the request names none).
        match = VERSION_SUFFIX.fullmatch(name)
        if match is not None and match["base"] in prompts:
            named = int(match["version"])
            if wanted_version is None or wanted_version == named:
                name, wanted_version = match["base"], named
                entry = prompts[name]
    if entry is None:
        raise PromptNotFound(
            f"prompt {query.describe()} not found: the prompt folder has no "
            f"{name}.yaml, .yml, .json or .prompt file",
            param="prompt_id",
        )
    if isinstance(entry, Broken):
        raise PromptStoreUnavailable(f"prompt '{name}' cannot be served: {entry.reason}")
    if wanted_version is not None:
        prompt = entry.by_number.get(wanted_version)
        if prompt is None:
            versions = ", ".join(str(number) for number in sorted(entry.by_number))
            raise PromptNotFound(
                f"prompt {query.describe()} not found; its versions are {versions}",
                param="prompt_version",
            )
        return prompt
    label = query.label or DEFAULT_LABEL
    number = entry.by_label.get(label)
    if number is None:
        labels = ", ".join(sorted(entry.by_label))
        raise PromptNotFound(
            f"prompt {query.describe()} not found; its labels are {labels}",
            param="prompt_label",
        )
    return entry.by_number[number]


def index_files(files: Mapping[str, FileRecord]) -> tuple[dict[str, Entry], dict[str, str]]:
    """Prompts by name, and the conflicts between files (keyed by their joined paths)."""
    groups: dict[str, list[tuple[str, FileRecord]]] = {}
    for relative in sorted(files):
        record = files[relative]
        groups.setdefault(record.name, []).append((relative, record))
    prompts: dict[str, Entry] = {}
    problems: dict[str, str] = {}
    for name, members in groups.items():
        errors = [f"{relative}: {record.error}" for relative, record in members if record.error]
        if errors:
            # Already logged when the file was read.
            prompts[name] = Broken("; ".join(errors))
            continue
        try:
            prompts[name] = _resolve(name, members)
        except Invalid as exc:
            key = ", ".join(relative for relative, _ in members)
            prompts[name] = Broken(str(exc))
            problems[key] = str(exc)
    return prompts, problems


def _resolve(name: str, members: list[tuple[str, FileRecord]]) -> Versions:
    paths = [relative for relative, _ in members]
    bases = [relative for relative, record in members if not record.version_file]
    if len(bases) > 1 or (len(members) > 1 and not all(p.endswith(EXTENSION) for p in paths)):
        raise Invalid(
            f"{_join(paths)} all define prompt '{name}'; keep one file per prompt "
            f"(or name.vN.prompt files for versions)"
        )
    numbered = [
        (version.number, relative)
        for relative, record in members
        for version in record.versions
        if version.number is not None
    ]
    # A base .prompt without a version follows its versioned siblings, so that, as in
    # LiteLLM, it is what a request without a version gets.
    next_number = max((number for number, _ in numbered), default=0) + 1
    versions: dict[int, Version] = {}
    origin: dict[int, str] = {}
    for relative, record in members:
        for version in record.versions:
            number = next_number if version.number is None else version.number
            if number in origin:
                raise Invalid(
                    f"{_join([origin[number], relative])} both define version {number} "
                    f"of prompt '{name}'"
                )
            versions[number], origin[number] = version, relative
    return _assign_labels(name, versions)


def _assign_labels(name: str, versions: Mapping[int, Version]) -> Versions:
    latest = max(versions)
    by_label: dict[str, int] = {}
    for number in sorted(versions):  # ascending: the highest version claiming a label wins
        for label in versions[number].labels:
            if label != "latest":
                by_label[label] = number
    if not by_label:
        by_label[DEFAULT_LABEL] = latest
    by_label["latest"] = latest
    labels_of: dict[int, list[str]] = {number: [] for number in versions}
    for label, number in by_label.items():
        labels_of[number].append(label)
    by_number = {
        number: Prompt(
            name=name,
            version=number,
            type=version.type,
            prompt=version.prompt,
            config=version.config,
            labels=tuple(labels_of[number]),
            template_language=version.language,
            input_schema=version.input_schema,
        )
        for number, version in versions.items()
    }
    return Versions(by_number=by_number, by_label=by_label)


def _join(items: Iterable[str]) -> str:
    *head, last = items
    return f"{', '.join(head)} and {last}" if head else last
