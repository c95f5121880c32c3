"""The embedded forwarder: an ASGI app that relays requests to an OpenAI-style API.

    client --ASGI--> Forwarder --aiohttp--> <base_url>/<path>      (``/v1/<path>`` or ``/<path>``)

The upstream is the one the middleware's :class:`~prompt_middleware.handoff.HandOff` names (a
model-list entry with an ``api_base``), else ``PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL``. Why
aiohttp and not httpx2 on this path: README, "Why the forwarder uses aiohttp".

    app.py       the ASGI app: lifespan, body buffering, the request's way through
    exchange.py  one request's record, and the watch for its client leaving
    targets.py   each upstream made ready once (URL prefix, key); the URL of a request
    headers.py   which headers cross (hop-by-hop ones do not)
    relay.py     the upstream's response, relayed chunk by chunk
    failures.py  our errors before the upstream answers; aiohttp's exceptions translated
    debug.py     the ``curl`` line of ``--detailed-debug``
    session.py   the pooled aiohttp session and the upstream timeouts
"""

from prompt_middleware.sidecar.forwarder.app import Forwarder, SessionFactory
from prompt_middleware.sidecar.forwarder.relay import UpstreamResponseCallback
from prompt_middleware.sidecar.forwarder.session import create_session, upstream_timeout

__all__ = [
    "Forwarder",
    "SessionFactory",
    "UpstreamResponseCallback",
    "create_session",
    "upstream_timeout",
]
