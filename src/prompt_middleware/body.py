"""Request bodies read with a size cap: the one rule both doors and the live endpoints follow.

A body is refused with 413 ``request_too_large`` as soon as it passes its cap (by its declared
``content-length`` before any of it is read): what was read of it is dropped, the rest is
never read.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Final

from starlette.types import Receive

from prompt_middleware.errors import RequestTooLarge

__all__ = ["MAX_BODY_SETTING", "check_declared_size", "join_capped", "read_body", "too_large"]

#: What sets the doors' cap; the live endpoints' webhook has a fixed one of its own.
MAX_BODY_SETTING: Final = "PROMPT_MIDDLEWARE_MAX_BODY_BYTES"


def too_large(limit: int, cap: str = MAX_BODY_SETTING) -> RequestTooLarge:
    """The 413 of a body over ``limit`` bytes; ``cap`` says where the limit comes from."""
    return RequestTooLarge(f"The request body is larger than {limit} bytes ({cap}).")


def check_declared_size(
    declared_size: bytes | str | None, limit: int, cap: str = MAX_BODY_SETTING
) -> None:
    """:func:`too_large` when a body's ``content-length`` already says it is over ``limit``."""
    if declared_size is not None and declared_size.isdigit() and int(declared_size) > limit:
        raise too_large(limit, cap)


async def join_capped(
    chunks: AsyncIterable[bytes], limit: int, cap: str = MAX_BODY_SETTING, first: bytes = b""
) -> bytes:
    """``first`` and then ``chunks`` joined; :func:`too_large` as soon as they pass ``limit``."""
    parts = [first]
    size = len(first)
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(limit, cap)
        parts.append(chunk)
    return b"".join(parts)


async def read_body(
    receive: Receive, limit: int, *, declared_size: bytes | None = None, cap: str = MAX_BODY_SETTING
) -> bytes | None:
    """An ASGI request's body (``declared_size``: its ``content-length``), or None when the
    client went away before it was whole; :func:`too_large` past ``limit``."""
    check_declared_size(declared_size, limit, cap)
    message = await receive()
    if message["type"] != "http.request":
        return None
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise too_large(limit, cap)
    if not message.get("more_body", False):
        return body  # the usual case: the whole body in one message
    rest = _Rest(receive)
    whole = await join_capped(rest, limit, cap, first=body)
    return None if rest.client_left else whole


class _Rest:
    """The chunks of an ASGI body after its first message, until the last or a disconnect."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.client_left = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] != "http.request":
                self.client_left = True
                return
            yield message.get("body", b"")
            if not message.get("more_body", False):
                return
