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
    """An upstream made ready to use: URL prefix, host for messages, and its credential:
    an ``Authorization`` value (OpenAI-style), or with ``anthropic`` an ``x-api-key`` value
    (None: the client's own is passed on)."""

    __slots__ = ("anthropic", "authorization", "host", "prefix")

    def __init__(
        self, base_url: str, authorization: str | None, *, anthropic: bool = False
    ) -> None:
        url = URL(base_url)
        # Credentials in the URL would clash with the Authorization we set (and leak in logs).
        if url.scheme not in ("http", "https") or not url.host or url.user is not None:
            raise ValueError(base_url)
        self.prefix = str(url.with_query(None).with_fragment(None)).rstrip("/")
        self.host = url.raw_authority  # host[:port], for messages and logs
        self.authorization = authorization
        self.anthropic = anthropic


class Targets:
    """Each upstream a request may name, made ready once; the default ones from the settings:
    the OpenAI-style upstream, and the Anthropic one for ``/v1/messages`` (README, "Three
    APIs"), which is the OpenAI-style one when PROMPT_MIDDLEWARE_ANTHROPIC_BASE_URL is unset."""

    def __init__(self, settings: Settings) -> None:
        key = settings.upstream_api_key
        self._default_authorization = None if key is None else f"Bearer {key.get_secret_value()}"
        anthropic_key = settings.anthropic_api_key
        self._anthropic_key = None if anthropic_key is None else anthropic_key.get_secret_value()
        self._made = lru_cache(maxsize=_MAX_TARGETS)(self._make)
        self.default = _configured(
            "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL",
            settings.upstream_base_url,
            self._default_authorization,
            "https://api.openai.com/v1",
        )
        self.anthropic = _configured(
            "PROMPT_MIDDLEWARE_ANTHROPIC_BASE_URL",
            settings.anthropic_base_url or settings.upstream_base_url,
            self._anthropic_key,
            "https://api.anthropic.com/v1",
            anthropic=True,
        )

    def get(self, upstream: Upstream | None, *, anthropic: bool = False) -> Target | None:
        """The target of ``upstream`` (None: the default one, if any); ``anthropic`` for a
        ``/v1/messages`` path."""
        if upstream is None:
            return self.anthropic if anthropic else self.default
        return self._made(upstream, anthropic)

    def _make(self, upstream: Upstream, anthropic: bool) -> Target:
        # The entry's key, else the configured one, else the client's.
        key = None if upstream.api_key is None else upstream.api_key.get_secret_value()
        if anthropic:
            credential = key if key is not None else self._anthropic_key
        else:
            credential = self._default_authorization if key is None else f"Bearer {key}"
        try:
            return Target(upstream.base_url, credential, anthropic=anthropic)
        except ValueError:
            raise UpstreamUnavailable(
                f"The model's api_base {without_credentials(upstream.base_url)!r} is not an "
                "http(s) URL without credentials."
            ) from None


def _configured(
    variable: str,
    base_url: str | None,
    credential: str | None,
    example: str,
    anthropic: bool = False,
) -> Target | None:
    if base_url is None:
        return None
    try:
        return Target(base_url, credential, anthropic=anthropic)
    except ValueError:
        raise ConfigurationError(
            f"{variable}={without_credentials(base_url)!r} is invalid: it must be an http(s) "
            f"URL without credentials, such as {example}."
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
