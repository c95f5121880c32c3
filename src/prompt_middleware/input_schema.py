"""A ``.prompt`` file's ``input.schema``: the variables a request must send, and their types.

The forms LiteLLM's dotprompt reads, which are Dotprompt's Picoschema::

    input:
      schema:
        name: string               # required
        age: integer, the age      # a description after the comma is ignored
        language?: string          # '?': optional (and may be null)
        tags?(array): string       # an array of strings
        address(object):           # an object with fields of its own
          city: string
        tone(enum): [formal, casual]

and a JSON Schema object (``type: object``, ``properties``, ``required``). Type names are
LiteLLM's: ``string``/``str``, ``integer``/``int``, ``number``, ``float``, ``boolean``/``bool``,
``array``/``list``, ``object``/``dict``, plus Picoschema's ``null`` and ``any``; an unknown name
means ``string``, as in LiteLLM. Values are judged as JSON: ``true`` is not an integer (Python
would say it is), and ``3`` is a ``float`` (JSON does not tell them apart). Variables the
schema does not name are allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from prompt_middleware.errors import InvalidPromptRequest

__all__ = ["InputSchema", "SchemaInvalid"]

_TYPE_NAMES: Final = {
    "string": "string",
    "str": "string",
    "integer": "integer",
    "int": "integer",
    "number": "number",
    "float": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
    "null": "null",
    "any": "any",
}
# "name", "name?", "name(array)", "name?(object, a description)"
_KEY: Final = re.compile(r"(?P<name>[^?(]+?)\s*(?P<optional>\?)?\s*(?:\((?P<kind>[^,)]*)[^)]*\))?")
_MAX_REPORTED: Final = 5


class SchemaInvalid(Exception):
    """The schema cannot be read; the message says where."""


@dataclass(frozen=True, slots=True)
class _Type:
    kind: str  # one of _TYPE_NAMES' values, or "enum"
    items: _Type | None = None  # an array's items
    fields: tuple[_Field, ...] = ()  # an object's fields, when it names them
    choices: tuple[Any, ...] = ()  # an enum's values

    def describe(self) -> str:
        if self.kind == "array" and self.items is not None:
            return f"array of {self.items.describe()}"
        if self.kind == "enum":
            return "one of " + ", ".join(repr(choice) for choice in self.choices)
        return self.kind


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    required: bool
    type: _Type


@dataclass(frozen=True, slots=True)
class InputSchema:
    """The fields of an ``input.schema``; :meth:`check` a request's variables against it."""

    fields: tuple[_Field, ...]

    @classmethod
    def parse(cls, raw: Any) -> InputSchema:
        """Read the value of ``input.schema``; raise :class:`SchemaInvalid` if it cannot be."""
        if not isinstance(raw, dict):
            raise SchemaInvalid(
                "'input.schema' must be a mapping of variable names to types "
                "(a named schema is not supported)"
            )
        if raw.get("type") == "object" and isinstance(raw.get("properties"), dict):
            return cls(_json_schema_fields(raw, "input.schema"))
        return cls(_pico_fields(raw, "input.schema"))

    def check(self, variables: Mapping[str, Any], prompt: str) -> None:
        """Raise :class:`InvalidPromptRequest` naming each variable missing or mistyped."""
        problems: list[str] = []
        _check_fields(self.fields, variables, "prompt_variables", problems)
        if problems:
            shown = "; ".join(problems[:_MAX_REPORTED])
            more = len(problems) - _MAX_REPORTED
            if more > 0:
                shown += f"; and {more} more"
            raise InvalidPromptRequest(
                f"Prompt '{prompt}' does not accept these prompt_variables "
                f"(its input.schema): {shown}.",
                param="prompt_variables",
            )


# -- reading ----------------------------------------------------------------------------


def _pico_fields(raw: Mapping[Any, Any], where: str) -> tuple[_Field, ...]:
    fields: list[_Field] = []
    for key, value in raw.items():
        match = _KEY.fullmatch(str(key).strip())
        if match is None:
            raise SchemaInvalid(f"'{where}': cannot read the field {key!r}")
        name = match["name"]
        kind = (match["kind"] or "").strip().lower() or None
        field_type = _pico_type(kind, value, f"{where}.{name}")
        fields.append(_Field(name, match["optional"] is None, field_type))
    return tuple(fields)


def _pico_type(kind: str | None, value: Any, where: str) -> _Type:
    if kind == "array":
        return _Type("array", items=_pico_type(None, value, f"{where}[]"))
    if kind == "enum":
        if not isinstance(value, list):
            raise SchemaInvalid(f"'{where}': an enum needs a list of values")
        return _Type("enum", choices=tuple(value))
    if kind not in (None, "object"):
        raise SchemaInvalid(f"'{where}': unknown kind {kind!r}; use array, object or enum")
    if isinstance(value, dict):
        return _Type("object", fields=_pico_fields(value, where))
    if value is None:
        return _Type("any")
    if not isinstance(value, str):
        raise SchemaInvalid(f"'{where}': a type must be a name such as 'string'")
    name = value.split(",", 1)[0].strip().lower()
    return _Type(_TYPE_NAMES.get(name, "string"))


def _json_schema_fields(raw: Mapping[str, Any], where: str) -> tuple[_Field, ...]:
    required = raw.get("required") or []
    if not isinstance(required, list):
        raise SchemaInvalid(f"'{where}.required' must be a list of names")
    properties: Mapping[str, Any] = raw["properties"]
    return tuple(
        _Field(str(name), name in required, _json_schema_type(spec, f"{where}.{name}"))
        for name, spec in properties.items()
    )


def _json_schema_type(spec: Any, where: str) -> _Type:
    if not isinstance(spec, dict):
        raise SchemaInvalid(f"'{where}' must be a JSON Schema object")
    if isinstance(spec.get("enum"), list):
        return _Type("enum", choices=tuple(spec["enum"]))
    kind = spec.get("type", "any")
    if isinstance(kind, list):  # ["string", "null"]: the first that is not null
        kind = next((k for k in kind if k != "null"), "null")
    kind = _TYPE_NAMES.get(str(kind).lower(), "string")
    if kind == "array" and "items" in spec:
        return _Type("array", items=_json_schema_type(spec["items"], f"{where}.items"))
    if kind == "object" and isinstance(spec.get("properties"), dict):
        return _Type("object", fields=_json_schema_fields(spec, where))
    return _Type(kind)


# -- checking ---------------------------------------------------------------------------


def _check_fields(
    fields: tuple[_Field, ...], values: Mapping[str, Any], path: str, problems: list[str]
) -> None:
    for field in fields:
        where = f"{path}.{field.name}"
        value = values.get(field.name)
        if value is None:
            if field.required and field.name not in values:
                problems.append(f"{where} is required ({field.type.describe()})")
                continue
            if not field.required:
                continue  # optional fields may be null, as in Picoschema
        _check_value(field.type, value, where, problems)


def _check_value(expected: _Type, value: Any, where: str, problems: list[str]) -> None:
    if not _matches(expected, value):
        problems.append(f"{where} must be {expected.describe()}, got {_json_type(value)}")
    elif expected.items is not None:
        for index, item in enumerate(value):
            _check_value(expected.items, item, f"{where}[{index}]", problems)
    elif expected.fields:
        _check_fields(expected.fields, value, where, problems)


def _matches(expected: _Type, value: Any) -> bool:
    kind = expected.kind
    if kind == "any":
        return True
    if kind == "enum":
        return any(value == choice and type(value) is type(choice) for choice in expected.choices)
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return value is None  # null


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
