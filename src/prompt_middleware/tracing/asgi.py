"""The ASGI side of a request span: what an answer's start message says about it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prompt_middleware.asgi import header_of

__all__ = ["content_type_of"]

_CONTENT_TYPE: Final = b"content-type"


def content_type_of(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The ``content-type`` of ASGI response headers (names compared case-insensitively)."""
    return header_of(headers, _CONTENT_TYPE)
