"""Where a request goes next: the hand-off between the middleware and the forwarder.

The middleware knows which model-list entry a request used; the forwarder knows how to send
it. The middleware records the entry's upstream in the ASGI scope under
:data:`UPSTREAM_SCOPE_KEY`, and the forwarder reads it there; a request without one goes to
the forwarder's default upstream. :data:`WAITED_SCOPE_KEY` tells the forwarder that the
request waited for a prompt store on its way.

When the middleware wraps a :class:`BodyForwarder` (the forwarder, as in the sidecar), it
skips the scope keys and hands over the body, the upstream and the response headers in one
call: no scope copy, no replayed ``receive``, no wrapped ``send``. Any other app gets the
request through plain ASGI as above.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

import msgspec
from starlette.types import Receive, Scope, Send

from prompt_middleware.settings import ModelEntry, Secret

__all__ = [
    "UPSTREAM_SCOPE_KEY",
    "WAITED_SCOPE_KEY",
    "BodyForwarder",
    "Upstream",
    "upstream_of",
    "upstream_path",
]

UPSTREAM_SCOPE_KEY: Final = "prompt_middleware.handoff"
#: True when the middleware waited (for a prompt store) before handing the request on: the
#: client may have left meanwhile, so the forwarder looks before it calls the upstream.
WAITED_SCOPE_KEY: Final = "prompt_middleware.waited"


class Upstream(msgspec.Struct, frozen=True):
    """An OpenAI-style base URL (``https://api.openai.com/v1``) and the key to send it."""

    base_url: str
    api_key: Secret | None = None


@runtime_checkable
class BodyForwarder(Protocol):
    """An ASGI app that also takes a request whose body the middleware has already read."""

    async def forward_body(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        *,
        upstream: Upstream | None = None,
        waited: bool = False,
        response_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> int:
        """Send ``body`` on as the request's whole body, to ``upstream`` (the default one when
        None), and answer the client with ``response_headers`` added to the response's own.

        ``scope`` is the request's: its ``content-length`` and body-related headers are not
        used. ``receive`` is read only to notice the client leaving; ``waited`` says the
        client may have left already. Returns the response's status (0 when the client left
        before there was one).
        """
        ...


def upstream_of(entry: ModelEntry | None) -> Upstream | None:
    """The upstream a model-list entry names, if it names one."""
    if entry is None or entry.api_base is None:
        return None
    return Upstream(base_url=entry.api_base, api_key=entry.api_key)


def upstream_path(path: str) -> str:
    """CONTRACT §6: ``/v1/<path>`` or ``/<path>`` goes to the OpenAI-style base URL (which
    already ends in ``/v1``) + ``/<path>``."""
    if path == "/v1" or path.startswith("/v1/"):
        return path[3:]
    return path
