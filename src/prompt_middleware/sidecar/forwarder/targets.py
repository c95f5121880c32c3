"""Where a request goes: the upstream's URL prefix and key, and the URL for a request path."""

from __future__ import annotations

import contextlib
from functools import lru_cache
from typing import Final
from urllib.parse import quote

from starlette.types import Scope
from yarl import URL

from prompt_middleware.handoff import upstream_path

__all__ = ["MAX_URLS", "Target", "upstream_url", "without_credentials"]

_PATH_SAFE: Final = "/!$&'()*+,;=:@~"
MAX_URLS: Final = 1024


class Target:
    """An upstream made ready to use: URL prefix, host for messages, Authorization value."""

    __slots__ = ("authorization", "host", "prefix")

    def __init__(self, base_url: str, authorization: str | None) -> None:
        url = URL(base_url)
        # Credentials in the URL would clash with the Authorization we set (and leak in logs).
        if url.scheme not in ("http", "https") or not url.host or url.user is not None:
            raise ValueError(base_url)
        self.prefix = str(url.with_query(None).with_fragment(None)).rstrip("/")
        self.host = url.raw_authority  # host[:port], for messages and logs
        self.authorization = authorization


def upstream_url(target: Target, scope: Scope) -> URL:
    """The upstream URL of the request: its path (under any root path) and its query."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    url = _path_url(target.prefix, path)
    query: bytes = scope.get("query_string", b"")
    if query:
        url = URL(f"{url}?{query.decode('latin-1')}", encoded=True)
    return url


@lru_cache(maxsize=MAX_URLS)  # bounded: made-up paths cannot grow memory
def _path_url(prefix: str, path: str) -> URL:
    # A service calls a handful of paths on a handful of upstreams: quoting the path and
    # parsing the URL are done once for each.
    return URL(prefix + quote(upstream_path(path), safe=_PATH_SAFE), encoded=True)


def without_credentials(url: str) -> str:
    """``url`` fit for a message: any user and password removed."""
    with contextlib.suppress(ValueError):
        parsed = URL(url)
        if parsed.user is not None or parsed.password is not None:
            return str(parsed.with_user(None))
    return url
