"""Where a request goes: the upstream's URL prefix and key, and the URL for a request path."""

from __future__ import annotations

import contextlib
from functools import lru_cache
from typing import Final
from urllib.parse import quote

from starlette.types import Scope
from yarl import URL

from prompt_middleware.errors import ConfigurationError, UpstreamUnavailable
from prompt_middleware.handoff import Upstream, upstream_path
from prompt_middleware.settings import Settings

__all__ = ["MAX_URLS", "Target", "Targets", "upstream_url", "without_credentials"]

_PATH_SAFE: Final = "/!$&'()*+,;=:@~"
_MAX_TARGETS: Final = 256
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


class Targets:
    """Each upstream a request may name, made ready once; the default one from the settings."""

    def __init__(self, settings: Settings) -> None:
        key = settings.upstream_api_key
        self._default_authorization = None if key is None else f"Bearer {key.get_secret_value()}"
        self._made = lru_cache(maxsize=_MAX_TARGETS)(self._make)
        self.default: Target | None = None
        if settings.upstream_base_url is not None:
            try:
                self.default = Target(settings.upstream_base_url, self._default_authorization)
            except ValueError:
                raise ConfigurationError(
                    "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL="
                    f"{without_credentials(settings.upstream_base_url)!r} is "
                    "invalid: it must be an http(s) URL without credentials, such as "
                    "https://api.openai.com/v1."
                ) from None

    def get(self, upstream: Upstream | None) -> Target | None:
        """The target of ``upstream`` (None: the default one, if any)."""
        return self.default if upstream is None else self._made(upstream)

    def _make(self, upstream: Upstream) -> Target:
        # The entry's key, else PROMPT_MIDDLEWARE_UPSTREAM_API_KEY, else the client's.
        authorization = self._default_authorization
        if upstream.api_key is not None:
            authorization = f"Bearer {upstream.api_key.get_secret_value()}"
        try:
            return Target(upstream.base_url, authorization)
        except ValueError:
            raise UpstreamUnavailable(
                f"The model's api_base {without_credentials(upstream.base_url)!r} is not an "
                "http(s) URL without credentials."
            ) from None


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
