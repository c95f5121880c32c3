"""``--detailed-debug``: each upstream request logged as a ``curl`` command, secrets masked."""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator
from typing import Final

__all__ = ["curl"]

_MASK: Final = "**********"
_SECRET_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
)
_SECRET_QUERY: Final = re.compile(r"key|token|secret|sig|password", re.IGNORECASE)


def curl(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    data: bytes | AsyncIterator[bytes] | None,
) -> str:
    """The request as a ``curl`` command line; a streamed body is not shown."""
    base, _, query = url.partition("?")
    if query:
        # Some APIs take their key in the query string (?key=..., ?api-key=...).
        fields = [field.partition("=") for field in query.split("&")]
        query = "&".join(
            f"{name}={_MASK}" if _SECRET_QUERY.search(name) else f"{name}{eq}{value}"
            for name, eq, value in fields
        )
        base = f"{base}?{query}"
    parts = ["curl", "-sS", "-X", method, shlex.quote(base)]
    for name, value in headers:
        if name.lower() in _SECRET_HEADERS:
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} {_MASK}" if rest else _MASK
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if isinstance(data, bytes):
        parts += ["--data-binary", shlex.quote(data.decode("utf-8", "replace"))]
    elif data is not None:
        parts += ["--data-binary", "@-", "# body streamed, not shown"]
    return " ".join(parts)
