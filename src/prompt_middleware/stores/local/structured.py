"""YAML and JSON prompt files: one Langfuse-shaped version, or several."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from prompt_middleware.prompts import ChatMessage, Placeholder, PromptMessage, PromptType
from prompt_middleware.stores.local.parsing import Invalid, Version, convert, json_value

# Langfuse's bookkeeping fields: accepted so an exported prompt loads, otherwise unused.
_LANGFUSE_BOOKKEEPING = frozenset(
    {
        "id",
        "projectId",
        "createdAt",
        "updatedAt",
        "createdBy",
        "isActive",
        "tags",
        "commitMessage",
        "resolutionGraph",
    }
)


class _VersionFields(msgspec.Struct, forbid_unknown_fields=True):
    prompt: str | list[Any]
    name: str | UnsetType = UNSET
    type: Literal["text", "chat"] | UnsetType = UNSET
    config: Any = None
    labels: list[str] | None = None
    version: Annotated[int, msgspec.Meta(ge=1)] | UnsetType = UNSET


class _VersionsFile(msgspec.Struct, forbid_unknown_fields=True):
    versions: list[Any]
    name: str | UnsetType = UNSET
    tags: Any = None


class _MessageFields(msgspec.Struct, forbid_unknown_fields=True):
    role: str
    content: str
    type: Literal["chatmessage"] | None = None


class _PlaceholderFields(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["placeholder"]
    name: str


def parse_structured(data: Any, name: str) -> tuple[Version, ...]:
    """The versions a decoded YAML or JSON file holds, for the prompt ``name``."""
    if isinstance(data, dict) and "versions" in data:
        file_fields: _VersionsFile = convert(data, _VersionsFile)
        _check_declared_name(file_fields.name, name)
        entries = file_fields.versions
    elif isinstance(data, list):
        entries = data
    elif isinstance(data, dict):
        return (_parse_version(data, name, several=False),)
    else:
        raise Invalid(
            "must hold a prompt (a mapping with 'prompt'), a mapping with 'versions', "
            "or a list of versions"
        )
    if not entries:
        raise Invalid("holds no versions")
    versions: list[Version] = []
    for index, raw in enumerate(entries, start=1):
        number = raw.get("version") if isinstance(raw, dict) else None
        where = f"version {number}" if type(number) is int else f"version entry {index}"
        try:
            versions.append(_parse_version(raw, name, several=True))
        except Invalid as exc:
            raise Invalid(f"{where}: {exc}") from exc
    numbers = [version.number for version in versions]
    duplicates = sorted({n for n in numbers if n is not None and numbers.count(n) > 1})
    if duplicates:
        raise Invalid(f"version {duplicates[0]} appears more than once")
    return tuple(versions)


def _parse_version(raw: Any, name: str, *, several: bool) -> Version:
    if not isinstance(raw, dict):
        raise Invalid(f"must be a mapping of prompt fields, got {_kind(raw)}")
    fields_: _VersionFields = convert(
        {key: value for key, value in raw.items() if key not in _LANGFUSE_BOOKKEEPING},
        _VersionFields,
    )
    _check_declared_name(fields_.name, name)
    if isinstance(fields_.version, UnsetType):
        if several:
            raise Invalid("'version' is required when a file holds several versions")
        number = 1
    else:
        number = fields_.version
    prompt_type: PromptType
    if isinstance(fields_.type, UnsetType):
        prompt_type = "chat" if isinstance(fields_.prompt, list) else "text"
    else:
        prompt_type = fields_.type
    prompt: str | tuple[PromptMessage, ...]
    if prompt_type == "chat":
        if not isinstance(fields_.prompt, list):
            raise Invalid("'prompt' must be a list of messages for a chat prompt")
        prompt = _parse_messages(fields_.prompt)
    else:
        if not isinstance(fields_.prompt, str):
            raise Invalid("'prompt' must be a string for a text prompt")
        prompt = fields_.prompt
    config = {} if fields_.config is None else json_value(fields_.config)
    return Version(number, prompt_type, prompt, config, tuple(fields_.labels or ()))


def _check_declared_name(declared: str | UnsetType, name: str) -> None:
    if not isinstance(declared, UnsetType) and declared != name:
        raise Invalid(
            f"'name' is {declared!r} but the file's path makes it {name!r}; "
            f"rename the file or fix 'name'"
        )


def _parse_messages(items: list[Any]) -> tuple[PromptMessage, ...]:
    messages: list[PromptMessage] = []
    for index, item in enumerate(items, start=1):
        try:
            if not isinstance(item, dict):
                raise Invalid(
                    f"must be a mapping with 'role' and 'content', or a placeholder "
                    f"{{type: placeholder, name: ...}}, got {_kind(item)}"
                )
            if item.get("type") == "placeholder":
                placeholder: _PlaceholderFields = convert(item, _PlaceholderFields)
                messages.append(Placeholder(name=placeholder.name))
            else:
                message: _MessageFields = convert(item, _MessageFields)
                messages.append(ChatMessage(role=message.role, content=message.content))
        except Invalid as exc:
            raise Invalid(f"'prompt' message {index}: {exc}") from exc
    return tuple(messages)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"
