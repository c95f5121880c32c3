"""A request's variant: its sticky key read from the body or a header, then the choice.

The key is the body's ``user`` field for ``sticky: user`` — its text when it is a JSON string
(the usual case), else its JSON as sent (``"user": 12345`` keys on ``12345``) — or, for
``sticky: header:<name>``, that header's value as it arrived. No key (absent, ``null``, empty,
or ``sticky: none``) means a weighted random draw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

import msgspec

from prompt_middleware.asgi import header_of
from prompt_middleware.experiments.choice import Arm, Split
from prompt_middleware.request import RequestFields

__all__ = ["UserOf", "assign", "sticky_key", "user_field"]

#: Where a request names its end user: the API's own field (README, "Three APIs").
UserOf = Callable[[RequestFields], msgspec.Raw | None]

_decode_text: Final = msgspec.json.Decoder(str).decode
_NULL: Final = b"null"


def user_field(fields: RequestFields) -> msgspec.Raw | None:
    """The body's ``user`` (chat completions)."""
    return fields.get("user")


def assign(
    split: Split,
    fields: RequestFields,
    headers: Iterable[tuple[bytes, bytes]],
    user_of: UserOf = user_field,
) -> Arm:
    """The arm this request gets."""
    return split.choose(sticky_key(split, fields, headers, user_of))


def sticky_key(
    split: Split,
    fields: RequestFields,
    headers: Iterable[tuple[bytes, bytes]],
    user_of: UserOf = user_field,
) -> str | bytes | None:
    """The key that keeps this caller on one variant, or None for a random draw.

    ``headers`` are ``(name, value)`` byte pairs: ASGI's (lower-case names) or an HTTP client's raw
    ones (names as sent); they are read only for ``sticky: header:<name>``.
    """
    if split.reads_user:
        raw = user_of(fields)
        return None if raw is None else _user_key(raw)
    wanted = split.sticky_header
    if wanted is None:
        return None
    return header_of(headers, wanted) or None


def _user_key(raw: msgspec.Raw) -> str | bytes | None:
    try:
        return _decode_text(raw) or None
    except msgspec.ValidationError:
        # Not a string: the value as the client wrote it is just as sticky.
        data = bytes(raw)
        return None if data == _NULL else data
