"""The ASGI side of a request span: what an answer's start message says about it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["content_type_of"]

_CONTENT_TYPE: Final = b"content-type"
_CONTENT_TYPE_LENGTH: Final = len(_CONTENT_TYPE)


def content_type_of(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The ``content-type`` of ASGI response headers (names compared case-insensitively)."""
    for name, value in headers:
        # Lower-case as ASGI servers and Starlette write it; only a name of its length is
        # lowered to compare (an app may send any case).
        if name == _CONTENT_TYPE or (
            len(name) == _CONTENT_TYPE_LENGTH and name.lower() == _CONTENT_TYPE
        ):
            return value
    return None
