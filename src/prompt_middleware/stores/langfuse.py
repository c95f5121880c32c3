"""Langfuse as a prompt store: ``GET /api/public/v2/prompts/{name}``, fully async.

Why not the SDK's ``Langfuse.get_prompt``: it is synchronous (a blocking httpx call, with
``backoff`` retries that sleep the calling thread), so on the event loop it would stall every
request in flight; and it keeps its own TTL cache with background refresh threads, which must
not be stacked on ours (two TTLs, two stale policies, fetch counts nobody can reason about).
The wire format is small and documented (``shared/langfuse/prompts-api.yaml``), so one httpx
request and a few msgspec structs do the job.

Errors, translated once here from HTTP statuses and httpx exceptions::

    404                        PromptNotFound (param "prompt_id")
    401 / 403                  PromptStoreUnavailable: credentials refused (never the keys)
    400                        PromptStoreUnavailable with Langfuse's message
    429 / 5xx / connect error  retried ``retries`` times, then PromptStoreUnavailable
    timeout, other statuses    PromptStoreUnavailable
    200 with a bad body        PromptStoreUnavailable: invalid prompt
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final, NoReturn
from urllib.parse import quote

import httpx
import msgspec
import structlog

from prompt_middleware.errors import ConfigurationError, PromptNotFound, PromptStoreUnavailable
from prompt_middleware.prompts import ChatMessage, Placeholder, Prompt, PromptMessage, PromptQuery

__all__ = ["LangfuseStore"]

logger = structlog.get_logger(__name__)

_PROMPTS_PATH: Final = "/api/public/v2/prompts/"
_MAX_MESSAGE_CHARS: Final = 300


# --- the wire format (components/schemas/Prompt of the API excerpt) -------------------------


class _Message(msgspec.Struct, frozen=True):
    """A ``ChatMessage`` (role, content, type "chatmessage" or absent) or a
    ``PlaceholderMessage`` (type "placeholder", name): one struct, told apart by ``type``
    because the chat message's ``type`` is optional and so cannot be a msgspec tag."""

    type: str | None = None
    role: str | None = None
    content: str | None = None
    name: str | None = None


class _TextPrompt(msgspec.Struct, frozen=True, tag_field="type", tag="text"):
    name: str
    version: int
    prompt: str
    config: Any = None
    labels: tuple[str, ...] = ()


class _ChatPrompt(msgspec.Struct, frozen=True, tag_field="type", tag="chat"):
    name: str
    version: int
    prompt: tuple[_Message, ...]
    config: Any = None
    labels: tuple[str, ...] = ()


class _ErrorBody(msgspec.Struct, frozen=True):
    """Langfuse's error body: ``{"message": ..., "error": ...}`` (any JSON object)."""

    message: Any = None


_decode_prompt = msgspec.json.Decoder(_TextPrompt | _ChatPrompt).decode
_decode_error = msgspec.json.Decoder(_ErrorBody).decode


class _InvalidPrompt(ValueError):
    pass


def _message(raw: _Message) -> PromptMessage:
    if raw.type == "placeholder":
        if raw.name is None:
            raise _InvalidPrompt("a placeholder message has no `name`")
        return Placeholder(name=raw.name)
    if raw.type not in (None, "chatmessage"):
        raise _InvalidPrompt(f"a chat message has the unknown type {raw.type!r}")
    if raw.role is None or raw.content is None:
        raise _InvalidPrompt("a chat message lacks `role` or `content`")
    return ChatMessage(role=raw.role, content=raw.content)


def _to_prompt(wire: _TextPrompt | _ChatPrompt) -> Prompt:
    # Langfuse sends config {} when none was set; null is mapped to the same.
    config = {} if wire.config is None else wire.config
    if isinstance(wire, _TextPrompt):
        return Prompt(
            name=wire.name,
            version=wire.version,
            type="text",
            prompt=wire.prompt,
            config=config,
            labels=wire.labels,
        )
    messages = tuple(_message(m) for m in wire.prompt)
    return Prompt(
        name=wire.name,
        version=wire.version,
        type="chat",
        prompt=messages,
        config=config,
        labels=wire.labels,
    )


def _error_message(body: bytes) -> str | None:
    try:
        message = _decode_error(body).message
    except msgspec.DecodeError:
        return None
    if not isinstance(message, str) or not message:
        return None
    return message[:_MAX_MESSAGE_CHARS]


def _is_json_object(body: bytes) -> bool:
    try:
        _decode_error(body)
    except msgspec.DecodeError:
        return False
    return True


def _path_segment(name: str) -> str:
    """``name`` as exactly one path segment: every reserved character percent-encoded.

    ``quote(safe="")`` leaves only unreserved characters (letters, digits, ``-._~``), so a
    ``/``, ``?``, ``#`` or ``:`` in the name cannot end the segment. ``.`` and ``..`` alone
    would still be dot segments that URL normalisation removes; they are encoded too.
    """
    segment = quote(name, safe="")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return segment


class LangfuseStore:
    """Prompts from Langfuse's public API, with Basic auth, a deadline and a small retry.

    ``timeout`` bounds the whole call, retries and backoff included. ``retries`` extra
    attempts are made on connect errors, 429 and 5xx only, after ``retry_backoff`` seconds
    (doubling); a retry that could not finish before the deadline is not started. The cache
    in front of the store serves a stale copy when this fails, so failing fast wins over
    trying hard.

    ``client`` is an injected ``httpx.AsyncClient`` (tests, or a shared pool); it is not
    closed by :meth:`aclose`. Without it the store creates its own pooled client on first
    use, inside the running event loop, and closes it in :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        public_key: str,
        secret_key: str,
        timeout: float = 5.0,
        retries: int = 1,
        retry_backoff: float = 0.05,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(
                "The Langfuse base URL must be an http:// or https:// URL with a host, "
                "such as https://cloud.langfuse.com"
            )
        if url.userinfo:
            # Never echo the URL: its user info is a secret.
            raise ConfigurationError(
                "The Langfuse base URL must not contain credentials; set LANGFUSE_PUBLIC_KEY "
                "and LANGFUSE_SECRET_KEY instead"
            )
        if url.query or url.fragment:
            raise ConfigurationError("The Langfuse base URL must not have a query or fragment")
        if timeout <= 0 or retries < 0 or retry_backoff < 0:
            raise ConfigurationError(
                "Langfuse store: timeout must be > 0, retries and retry_backoff >= 0"
            )
        # Only unreserved characters and %XX follow this prefix (see _path_segment), so the
        # host and the path up to the prompt name are fixed here, once.
        self._host = url.netloc.decode("ascii")  # host[:port], shown in error messages
        path = url.raw_path.decode("ascii").rstrip("/")
        self._prefix = f"{url.scheme}://{self._host}{path}{_PROMPTS_PATH}"
        self._auth = httpx.BasicAuth(public_key, secret_key)
        self._timeout = timeout
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._client = client
        self._owns_client = client is None
        self._closed = False

    def __repr__(self) -> str:
        return f"LangfuseStore(host={self._host!r})"

    def _http(self) -> httpx.AsyncClient:
        if self._closed:
            raise PromptStoreUnavailable("The Langfuse prompt store has been closed")
        if self._client is None:
            # Created lazily so that it binds to the loop that serves requests.
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                headers={"accept": "application/json"},
            )
        return self._client

    async def aclose(self) -> None:
        """Close the store's own client; an injected client is left to its owner."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        if not query.name:
            # An empty name would address the list endpoint, not a prompt.
            raise PromptNotFound("The prompt name is empty", param="prompt_id")
        client = self._http()
        url = self._prefix + _path_segment(query.name)
        params = (
            {"version": str(query.version)}
            if query.version is not None
            else {"label": query.label or "production"}
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):
                attempt = 0
                while True:
                    attempt += 1
                    outcome = await self._send(client, url, params, query, attempt)
                    if isinstance(outcome, httpx.Response) and not _retryable(outcome):
                        return self._result(outcome, query)
                    delay = self._retry_backoff * 2 ** (attempt - 1)
                    if attempt > self._retries or loop.time() + delay >= deadline:
                        if isinstance(outcome, httpx.Response):
                            self._raise_for_status(outcome, query)
                        raise PromptStoreUnavailable(
                            f"Langfuse at {self._host} could not be reached "
                            f"({type(outcome).__name__}) while fetching prompt "
                            f"{query.describe()}"
                        ) from outcome
                    await asyncio.sleep(delay)
        except TimeoutError as exc:
            raise self._timed_out(query) from exc

    def _timed_out(self, query: PromptQuery) -> PromptStoreUnavailable:
        return PromptStoreUnavailable(
            f"Langfuse at {self._host} did not answer in time ({self._timeout:g}s) "
            f"while fetching prompt {query.describe()}"
        )

    async def _send(
        self,
        client: httpx.AsyncClient,
        url: str,
        params: dict[str, str],
        query: PromptQuery,
        attempt: int,
    ) -> httpx.Response | httpx.TransportError:
        """One request; a connect error is returned rather than raised (worth a retry)."""
        started = time.perf_counter()
        log = logger.bind(
            prompt=query.name, label=params.get("label"), version=query.version, attempt=attempt
        )
        try:
            response = await client.get(
                url,
                params=params,
                auth=self._auth,
                follow_redirects=False,
                timeout=self._timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            log.debug("langfuse.fetch", error=type(exc).__name__, duration_ms=_ms(started))
            return exc
        except httpx.TimeoutException as exc:
            raise self._timed_out(query) from exc
        except httpx.HTTPError as exc:
            raise PromptStoreUnavailable(
                f"Langfuse at {self._host} failed while fetching prompt {query.describe()} "
                f"({type(exc).__name__})"
            ) from exc
        log.debug("langfuse.fetch", status=response.status_code, duration_ms=_ms(started))
        return response

    def _result(self, response: httpx.Response, query: PromptQuery) -> Prompt:
        if response.status_code != 200:
            self._raise_for_status(response, query)
        try:
            return _to_prompt(_decode_prompt(response.content))
        except (msgspec.ValidationError, _InvalidPrompt) as exc:
            detail = str(exc)
            cause: Exception = exc
        except msgspec.DecodeError as exc:
            detail = f"the body is not JSON ({exc})"
            cause = exc
        raise PromptStoreUnavailable(
            f"Langfuse returned an invalid prompt for {query.describe()}: {detail}"
        ) from cause

    def _raise_for_status(self, response: httpx.Response, query: PromptQuery) -> NoReturn:
        status = response.status_code
        what = f"prompt {query.describe()}"
        if status == 404:
            if _is_json_object(response.content):
                raise PromptNotFound(
                    f"Langfuse has no prompt {query.describe()}", param="prompt_id"
                )
            # Langfuse's 404 is always JSON; an HTML or empty one comes from a proxy or a
            # wrong base URL. Reporting it as "not found" would make the cache evict.
            raise PromptStoreUnavailable(
                f"Langfuse at {self._host} answered HTTP 404 without Langfuse's JSON error "
                f"body for {what}: check LANGFUSE_BASE_URL"
            )
        if status in (401, 403):
            # Langfuse's own message is not repeated: it is not ours to vouch for.
            raise PromptStoreUnavailable(
                f"Langfuse at {self._host} refused the credentials (HTTP {status}) while "
                f"fetching {what}: check the public and secret key (LANGFUSE_PUBLIC_KEY, "
                "LANGFUSE_SECRET_KEY or the model-list entry's) and that the base URL is the "
                "host of their project"
            )
        if status == 400:
            detail = _error_message(response.content)
            raise PromptStoreUnavailable(
                f"Langfuse at {self._host} rejected the request for {what} (HTTP 400)"
                + (f": {detail}" if detail else "")
            )
        if status == 429:
            raise PromptStoreUnavailable(
                f"Langfuse at {self._host} is rate-limiting requests (HTTP 429) for {what}"
            )
        if 300 <= status < 400:
            raise PromptStoreUnavailable(
                f"Langfuse at {self._host} answered with a redirect (HTTP {status}) for "
                f"{what}; redirects are not followed: check LANGFUSE_BASE_URL"
            )
        kind = "failed" if status >= 500 else "answered"
        raise PromptStoreUnavailable(
            f"Langfuse at {self._host} {kind} with HTTP {status} for {what}"
        )


def _retryable(response: httpx.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
