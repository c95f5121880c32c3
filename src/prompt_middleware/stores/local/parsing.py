"""What every prompt file format shares: the parsed version, the error, the decoders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeAlias

import msgspec
import yaml

from prompt_middleware.prompts import PromptMessage, PromptType, TemplateLanguage

Signature: TypeAlias = tuple[int, int, int]  # mtime_ns, size, inode


class Invalid(Exception):
    """A file cannot be served; the message says why, without the file's path."""


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a prompt as a file gives it, before labels are assigned."""

    number: int | None  # None: a base .prompt file numbered from its versioned siblings
    type: PromptType
    prompt: str | tuple[PromptMessage, ...]
    config: Any
    labels: tuple[str, ...]
    language: TemplateLanguage = "langfuse"
    input_schema: Any = None  # a .prompt file's input.schema, as written


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One file as of one scan: its versions, or why it cannot be served."""

    signature: Signature
    name: str
    versions: tuple[Version, ...] = ()
    error: str | None = None
    version_file: bool = False  # ``name.vN.prompt``


def decode_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"is not UTF-8 text (byte {exc.start})") from exc
    return text.replace("\r\n", "\n")


def decode_json(data: bytes) -> Any:
    try:
        return msgspec.json.decode(data.removeprefix(b"\xef\xbb\xbf"))
    except msgspec.DecodeError as exc:
        raise Invalid(f"is not valid JSON: {exc}") from exc


def decode_yaml(data: bytes | str) -> Any:
    text = decode_text(data) if isinstance(data, bytes) else data
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise Invalid(f"is not valid YAML: {exc.problem}{where}") from exc
    except yaml.YAMLError as exc:
        raise Invalid(f"is not valid YAML: {exc}") from exc


def convert(value: Any, into: type[Any]) -> Any:
    try:
        return msgspec.convert(value, into)
    except msgspec.ValidationError as exc:
        raise Invalid(_validation_reason(exc)) from exc


def _validation_reason(exc: msgspec.ValidationError) -> str:
    # "Expected `str`, got `int` - at `$.prompt`" -> "'prompt': expected `str`, got `int`"
    message = str(exc)
    match = re.fullmatch(r"(?P<what>.*) - at `\$\.?(?P<where>.*)`", message)
    if match is None or not match["where"]:
        return message[:1].lower() + message[1:]
    what = match["what"]
    return f"'{match['where']}': {what[:1].lower()}{what[1:]}"


def json_value(value: Any) -> Any:
    # YAML has values JSON lacks (dates, non-string keys): normalise to what a request carries.
    try:
        return msgspec.json.decode(msgspec.json.encode(value))
    except (msgspec.EncodeError, TypeError) as exc:
        raise Invalid(f"'config' is not a JSON value: {exc}") from exc
