"""``HttpxPromptTransport``: :class:`~prompt_middleware.transport.PromptTransport` for a plain
``httpx`` client, as SDKs older than ``openai`` 3 and ``anthropic`` 2 take.

    client = openai.AsyncOpenAI(http_client=httpx.AsyncClient(transport=HttpxPromptTransport()))

The same door, given httpx's module instead of httpx2's: httpx2 kept httpx's classes and
their behaviour, so the casts below name the same shapes. Needs ``httpx``
(``pip install 'prompt-middleware[httpx]'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import httpx
import httpx2

from prompt_middleware.observe import Observer
from prompt_middleware.settings import Settings
from prompt_middleware.stores.base import PromptStore
from prompt_middleware.tracing import TracedStream, Tracing
from prompt_middleware.transport import ClientDoor, HttpModule

__all__ = ["HttpxPromptTransport"]


class _HttpxTracedStream(TracedStream, httpx.AsyncByteStream):
    """The span's stream, as an httpx client checks for its own stream class."""


class HttpxPromptTransport(ClientDoor, httpx.AsyncBaseTransport):
    """:class:`~prompt_middleware.PromptTransport` for an ``httpx.AsyncClient``; the same
    arguments, ``transport`` an httpx one (default: a new ``httpx.AsyncHTTPTransport()``)."""

    http = cast(HttpModule, httpx)
    traced_stream = _HttpxTracedStream

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        settings: Settings | None = None,
        *,
        stores: Mapping[str, PromptStore] | None = None,
        observer: Observer | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        wrapped = transport if transport is not None else httpx.AsyncHTTPTransport()
        super().__init__(
            cast(httpx2.AsyncBaseTransport, wrapped), settings, stores, observer, tracing
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.send(cast(httpx2.Request, request))
        return cast(httpx.Response, response)
