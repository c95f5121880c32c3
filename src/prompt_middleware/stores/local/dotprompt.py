"""LiteLLM's ``.prompt`` files: YAML front matter between ``---`` lines, then the template.

:func:`parse_dotprompt` turns a file's text into one :class:`Version`; :func:`parse_body`
turns the template (the text after the front matter) into a text prompt or chat messages.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from prompt_middleware.prompts import ChatMessage, PromptMessage, PromptType
from prompt_middleware.stores.local.parsing import (
    Invalid,
    Version,
    convert,
    decode_yaml,
    json_value,
)

EXTENSION = ".prompt"
# LiteLLM's versioned dotprompt files: ``name.v2.prompt`` (and ``prompt_id="name.v2"``).
VERSION_SUFFIX = re.compile(r"(?P<base>.+)\.v(?P<version>[1-9][0-9]*)")
# Role markers as LiteLLM reads them, but case-insensitive.
_ROLE_MARKER = re.compile(r"^[ \t]*(system|user|assistant):", re.IGNORECASE | re.MULTILINE)
_FRONT_MATTER_FENCE = "---"
# Front-matter keys that describe the file rather than the request.
_NOT_CONFIG = frozenset({"labels", "version", "input", "output"})


class _FrontMatterMeta(msgspec.Struct):
    labels: list[str] | None = None
    version: Annotated[int, msgspec.Meta(ge=1)] | UnsetType = UNSET


def parse_dotprompt(text: str, file_version: int | None) -> Version:
    """The version a ``.prompt`` file's text holds; ``file_version`` is the ``N`` of
    ``name.vN.prompt``, None for ``name.prompt``."""
    front, body = split_front_matter(text)
    meta: _FrontMatterMeta = convert(
        {key: front[key] for key in ("labels", "version") if key in front}, _FrontMatterMeta
    )
    number: int | None = None
    if not isinstance(meta.version, UnsetType):
        number = meta.version
        if file_version is not None and number != file_version:
            raise Invalid(
                f"the front matter says version {number} but the file name says "
                f"version {file_version}"
            )
    elif file_version is not None:
        number = file_version
    config = json_value({key: value for key, value in front.items() if key not in _NOT_CONFIG})
    prompt = parse_body(body)
    prompt_type: PromptType = "text" if isinstance(prompt, str) else "chat"
    return Version(number, prompt_type, prompt, config, tuple(meta.labels or ()))


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The front matter as a mapping, and the body after it."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != _FRONT_MATTER_FENCE:
        return {}, text  # no front matter: the whole file is the template, as in LiteLLM
    for index in range(1, len(lines)):
        if lines[index].rstrip() == _FRONT_MATTER_FENCE:
            break
    else:
        raise Invalid("the front matter opened by '---' on line 1 is never closed by '---'")
    try:
        front = decode_yaml("".join(lines[1:index]))
    except Invalid as exc:
        raise Invalid(f"front matter {exc}") from exc
    if front is None:
        front = {}
    if not isinstance(front, dict) or not all(isinstance(key, str) for key in front):
        raise Invalid("the front matter must be a YAML mapping of settings")
    return front, "".join(lines[index + 1 :])


def parse_body(body: str) -> str | tuple[PromptMessage, ...]:
    """A text prompt, or the chat messages the role markers delimit."""
    markers = list(_ROLE_MARKER.finditer(body))
    if not markers:
        return body.strip()
    messages: list[PromptMessage] = []
    # LiteLLM makes text before the first marker a user message; so do we.
    leading = body[: markers[0].start()].strip()
    if leading:
        messages.append(ChatMessage(role="user", content=leading))
    ends = [marker.start() for marker in markers[1:]] + [len(body)]
    for marker, end in zip(markers, ends, strict=True):
        content = body[marker.end() : end].strip()
        if content:  # a marker with nothing after it adds no empty message
            messages.append(ChatMessage(role=marker[1].lower(), content=content))
    if not messages:
        raise Invalid("the role markers hold no text")
    return tuple(messages)
