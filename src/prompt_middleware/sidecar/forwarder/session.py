"""The forwarder's one aiohttp session, and the upstream timeouts as aiohttp takes them."""

from __future__ import annotations

from typing import Final

import aiohttp

from prompt_middleware.settings import Settings

__all__ = ["create_session", "upstream_timeout"]

# aiohttp would add these when the client did not send them; a proxy adds nothing.
_SKIP_AUTO_HEADERS: Final = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


def create_session(settings: Settings) -> aiohttp.ClientSession:
    """The pooled client session the forwarder uses unless given a factory; call in a loop.

    One session and one connector for every upstream: the connector already keeps one
    keep-alive pool per (scheme, host, port), so each upstream has its own pool while all
    share one lifecycle. No connection limit: the server in front bounds concurrency, and a
    cap here would queue long streams behind each other and time out the connect phase.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=_SKIP_AUTO_HEADERS,
        timeout=upstream_timeout(settings),
    )


def upstream_timeout(settings: Settings) -> aiohttp.ClientTimeout:
    """The upstream timeouts (README, "Configuration") as aiohttp takes them."""
    # No total unless asked for: a stream may rightly last longer than any fixed bound.
    # ``connect`` covers DNS, TCP and TLS; ``sock_read`` is the longest wait for the
    # upstream's next bytes.
    return aiohttp.ClientTimeout(
        total=settings.upstream_total_timeout_seconds,
        connect=settings.upstream_connect_timeout_seconds,
        sock_read=settings.upstream_timeout_seconds,
    )
