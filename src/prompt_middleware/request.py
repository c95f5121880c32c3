"""Decoding of a chat-completions body: the top level only, every value kept as raw bytes.

A body is decoded as ``dict[str, msgspec.Raw]``: each value stays the exact bytes the client
sent, so a field we do not touch (unicode, 20-digit integers, ``1e-7``, deep objects) is
copied through byte for byte and never parsed. A field is decoded, into the type it must
have, only when the rewrite reads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

import msgspec

from prompt_middleware.errors import InvalidPromptRequest, InvalidRequest
from prompt_middleware.stores.kinds import STORE_KINDS

__all__ = [
    "EXTENSION_FIELDS",
    "Field",
    "RequestFields",
    "decode_body",
    "decode_field",
    "decode_version",
    "extension_fields",
]

RequestFields = dict[str, msgspec.Raw]

EXTENSION_FIELDS: Final = frozenset(
    {"prompt_id", "prompt_variables", "prompt_label", "prompt_version"}
)
# Each store kind's request-field prefix (``langfuse_``, ``humanloop_``).
_EXTENSION_PREFIXES: Final = tuple(k.request_prefix for k in STORE_KINDS if k.request_prefix)

# Versions are counted from 1; eighteen digits is more than any store will ever have.
_MAX_VERSION_DIGITS: Final = 18

_body_decoder: Final = msgspec.json.Decoder(RequestFields)
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}

_VERSION: Final = str | int
_TYPE_NAMES: Final[dict[Any, str]] = {
    str: "a string",
    int: "an integer",
    dict[str, Any]: "a JSON object",
    list[Any]: "a JSON array",
    list[msgspec.Raw]: "a JSON array",
    str | int: "an integer or a string of digits",
}


_starts_with_extension_prefix: Final = re.compile("|".join(_EXTENSION_PREFIXES)).match
_MAX_CLASSIFIED: Final = 1024


def extension_fields(fields: RequestFields) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The extension fields present: the ``prompt_*`` ones, and the ``langfuse_*`` and
    ``humanloop_*`` ones. On the hot path of every matched request."""
    # A client sends the same set of fields request after request: classify each set once.
    return _classify(tuple(fields))


@lru_cache(maxsize=_MAX_CLASSIFIED)  # bounded: made-up field names cannot grow memory
def _classify(names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (
        tuple(name for name in names if name in EXTENSION_FIELDS),
        tuple(filter(_starts_with_extension_prefix, names)),
    )


def decode_body(body: bytes) -> RequestFields:
    """The body's top-level fields as raw JSON values; 400 ``invalid_request`` otherwise."""
    try:
        return _body_decoder.decode(body)
    except msgspec.DecodeError:
        pass
    except RecursionError:
        raise _too_deep(None) from None
    except UnicodeDecodeError:
        raise _not_utf8(None) from None
    # Tell "not JSON" from "JSON but not an object": the message should say which to fix.
    try:
        msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise _too_deep(None) from None
    except UnicodeDecodeError:
        raise _not_utf8(None) from None
    raise InvalidRequest("The request body must be a JSON object.") from None


def decode_field(fields: RequestFields, name: str, type_: Any) -> Any:
    """Field ``name`` decoded as ``type_``, or None when absent or null; 400 when mistyped."""
    raw = fields.get(name)
    if raw is None:
        return None
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_ | None)
    return _decode(decoder.decode, raw, name, type_)


class Field:
    """:func:`decode_field` for one field, its decoder made once: for the fields every
    managed request reads (``Field("model", str)(fields)``)."""

    __slots__ = ("_decode", "name", "type_")

    def __init__(self, name: str, type_: Any) -> None:
        self.name = name
        self.type_ = type_
        self._decode = msgspec.json.Decoder(type_ | None).decode

    def __call__(self, fields: RequestFields) -> Any:
        raw = fields.get(self.name)
        if raw is None:
            return None
        return _decode(self._decode, raw, self.name, self.type_)


def _decode(decode: Callable[[msgspec.Raw], Any], raw: msgspec.Raw, name: str, type_: Any) -> Any:
    try:
        return decode(raw)
    except RecursionError:
        raise _too_deep(name) from None
    except UnicodeDecodeError:
        raise _not_utf8(name) from None
    except msgspec.DecodeError:
        expected = _TYPE_NAMES.get(type_, str(type_))
        raise InvalidRequest(f"'{name}' must be {expected}.", param=name) from None


def decode_version(fields: RequestFields) -> int | None:
    """``prompt_version`` as a positive integer; a string of digits is accepted."""
    value = decode_field(fields, "prompt_version", _VERSION)
    if value is None:
        return None
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= _MAX_VERSION_DIGITS):
            raise InvalidRequest(
                "'prompt_version' must be an integer or a string of digits.", param="prompt_version"
            )
        value = int(value)
    if value < 1:
        raise InvalidPromptRequest("'prompt_version' must be 1 or more.", param="prompt_version")
    return int(value)


def _not_utf8(name: str | None) -> InvalidRequest:
    where = f"'{name}'" if name else "A field name of the request body"
    return InvalidRequest(f"{where} is not valid UTF-8.", param=name)


def _too_deep(name: str | None) -> InvalidRequest:
    where = f"'{name}'" if name else "The request body"
    return InvalidRequest(f"{where} is nested too deeply to decode.", param=name)
