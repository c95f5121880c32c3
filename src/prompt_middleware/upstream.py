"""Where a request goes next: the hand-off between the middleware and the forwarder.

The middleware knows which model-list entry a request used; the forwarder knows how to send
it. The middleware records the entry's upstream in the ASGI scope under
:data:`UPSTREAM_SCOPE_KEY`, and the forwarder reads it there; a request without one goes to
the forwarder's default upstream. :data:`WAITED_SCOPE_KEY` tells the forwarder that the
request waited for a prompt store on its way.
"""

from __future__ import annotations

from typing import Final

import msgspec

from prompt_middleware.settings import ModelEntry, Secret

__all__ = ["UPSTREAM_SCOPE_KEY", "WAITED_SCOPE_KEY", "Upstream", "upstream_of", "upstream_path"]

UPSTREAM_SCOPE_KEY: Final = "prompt_middleware.upstream"
#: True when the middleware waited (for a prompt store) before handing the request on: the
#: client may have left meanwhile, so the forwarder looks before it calls the upstream.
WAITED_SCOPE_KEY: Final = "prompt_middleware.waited"


class Upstream(msgspec.Struct, frozen=True):
    """An OpenAI-style base URL (``https://api.openai.com/v1``) and the key to send it."""

    base_url: str
    api_key: Secret | None = None


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
