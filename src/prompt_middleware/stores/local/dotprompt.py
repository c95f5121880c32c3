"""LiteLLM's ``.prompt`` files: YAML front matter between ``---`` lines, then a Jinja template.

:func:`parse_dotprompt` turns a file's text into one :class:`Version`. A body whose only Jinja
is ``{{variable}}`` is split into messages now (:func:`parse_body`) and filled per request by
the plain substitution, so it costs nothing more than a YAML prompt; a body with logic is a
``dotprompt`` prompt, split when it is rendered. Both are compiled here, once per file version
(:mod:`prompt_middleware.jinja` memoises it for the engine), and so is ``input.schema`` read:
a file that cannot be served says so when it is read, naming the line. Front matter without a
body is a prompt of settings only: one ``messages`` placeholder, which the client's messages
fill (README, "LiteLLM's `.prompt` files").
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from prompt_middleware.input_schema import InputSchema, SchemaInvalid
from prompt_middleware.jinja import TemplateInvalid, compile_jinja, is_plain
from prompt_middleware.prompts import ChatMessage, Placeholder, PromptMessage, PromptType
from prompt_middleware.roles import ROLE_MARKER, role_sections
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
_FRONT_MATTER_FENCE = "---"
# Front-matter keys that describe the file rather than the request.
_NOT_CONFIG = frozenset({"labels", "version", "input", "output"})


class _FrontMatterMeta(msgspec.Struct):
    labels: list[str] | None = None
    version: Annotated[int, msgspec.Meta(ge=1)] | UnsetType = UNSET


def parse_dotprompt(text: str, file_version: int | None) -> Version:
    """The version a ``.prompt`` file's text holds; ``file_version`` is the ``N`` of
    ``name.vN.prompt``, None for ``name.prompt``."""
    front, body, first_line = split_front_matter(text)
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
    labels = tuple(meta.labels or ())
    schema = _input_schema(front)
    if not body.strip():
        # Front matter alone (model, parameters): the client's messages go as they are.
        only_settings = (Placeholder("messages"),)
        return Version(number, "chat", only_settings, config, labels, "jinja", schema)
    if is_plain(body):
        prompt = parse_body(body)
        prompt_type: PromptType = "text" if isinstance(prompt, str) else "chat"
        return Version(number, prompt_type, prompt, config, labels, "jinja", schema)
    try:
        compile_jinja(body, split_roles=True)
    except TemplateInvalid as exc:
        raise Invalid(exc.describe(first_line)) from exc
    # The roles are found when it is rendered. The body is kept as the file has it, so that
    # a line of the template is a line of the file, ``first_line - 1`` further down.
    prompt_type = "chat" if ROLE_MARKER.search(body) else "text"
    return Version(number, prompt_type, body, config, labels, "dotprompt", schema)


def _input_schema(front: dict[str, Any]) -> Any:
    """``input.schema`` as written (JSON data), once it is known to be readable."""
    declared = front.get("input")
    if not isinstance(declared, dict) or declared.get("schema") is None:
        return None
    schema = json_value(declared["schema"])
    try:
        InputSchema.parse(schema)
    except SchemaInvalid as exc:
        raise Invalid(str(exc)) from exc
    return schema


def split_front_matter(text: str) -> tuple[dict[str, Any], str, int]:
    """The front matter as a mapping, the body after it, and the file line the body starts on."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != _FRONT_MATTER_FENCE:
        return {}, text, 1  # no front matter: the whole file is the template, as in LiteLLM
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
    return front, "".join(lines[index + 1 :]), index + 2


def parse_body(body: str) -> str | tuple[PromptMessage, ...]:
    """A text prompt, or the chat messages the role markers delimit."""
    sections = role_sections(body)
    if sections is None:
        return body.strip()
    messages: list[PromptMessage] = []
    for role, start, end in sections:
        content = body[start:end].strip()
        if content:  # a marker with nothing after it adds no empty message
            messages.append(ChatMessage(role=role, content=content))
    if not messages:
        raise Invalid("the role markers hold no text")
    return tuple(messages)
