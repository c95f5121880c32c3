"""The HTTP side every remote prompt store shares, written once.

A base URL checked at start-up (never echoed: it may hold credentials); a client that is
injected (the registry's shared pool, or a test's) or created on first use inside the running
loop; one deadline over every attempt; a small retry on connect errors, 429 and 5xx only,
fast by design (the cache's stale copy is the safety net); and the translation of HTTP
statuses and httpx2 errors into :class:`PromptStoreUnavailable` / :class:`PromptNotFound`
with messages that name the service and what to check, never a key.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

import httpx2
import msgspec
import structlog

from prompt_middleware.errors import ConfigurationError, PromptNotFound, PromptStoreUnavailable

__all__ = ["HttpService", "ServiceText", "error_detail", "is_json_object", "path_segment"]

logger = structlog.get_logger("prompt_middleware.stores")


@dataclass(frozen=True, slots=True)
class ServiceText:
    """How a store's messages name its service, and what they tell the operator to check."""

    name: str  # "Langfuse"; also the subject of "<name> at <host> ..."
    base_url: str  # "The Langfuse base URL"
    example: str  # an example base URL
    credentials: str  # where credentials go instead of the URL
    check_base_url: str  # "check LANGFUSE_BASE_URL"
    refused: str  # "the credentials" / "the API key"
    check_credentials: str  # what to check when they are refused
    log_event: str  # "langfuse.fetch"
    query_hint: str = ""  # appended to the "no query or fragment" error


class HttpService:
    """One remote service as a store talks to it: URL, client, deadline, retry, errors."""

    def __init__(
        self,
        text: ServiceText,
        *,
        base_url: str,
        timeout: float,
        retries: int,
        retry_backoff: float,
        client: httpx2.AsyncClient | None,
    ) -> None:
        url = httpx2.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(
                f"{text.base_url} must be an http:// or https:// URL with a host, such as "
                f"{text.example}"
            )
        if url.userinfo:
            # Never echo the URL: its user info is a secret.
            raise ConfigurationError(
                f"{text.base_url} must not contain credentials; {text.credentials}"
            )
        if url.query or url.fragment:
            raise ConfigurationError(
                f"{text.base_url} must not have a query or fragment{text.query_hint}"
            )
        if timeout <= 0 or retries < 0 or retry_backoff < 0:
            raise ConfigurationError(
                f"{text.name} store: timeout must be > 0, retries and retry_backoff >= 0"
            )
        self.text = text
        self.host = url.netloc.decode("ascii")  # host[:port], shown in error messages
        # Only unreserved characters and %XX follow this base (see path_segment), so the host
        # and the path up to the prompt's name are fixed here, once.
        self.base = f"{url.scheme}://{self.host}{url.raw_path.decode('ascii').rstrip('/')}"
        self.timeout = timeout
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._client = client
        self._owns_client = client is None
        self._closed = False

    @property
    def at(self) -> str:
        """ "Langfuse at cloud.langfuse.com": the subject of every message."""
        return f"{self.text.name} at {self.host}"

    def client(self) -> httpx2.AsyncClient:
        if self._closed:
            raise PromptStoreUnavailable(f"The {self.text.name} prompt store has been closed")
        if self._client is None:
            # Created lazily so that it binds to the loop that serves requests.
            self._client = httpx2.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                limits=httpx2.Limits(max_connections=100, max_keepalive_connections=20),
            )
        return self._client

    async def aclose(self) -> None:
        """Close the client the service made; an injected client is left to its owner."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    async def send(self, request: httpx2.Request, what: str, **log: Any) -> httpx2.Response:
        """The answer to ``request``, within one deadline, retried on 429, 5xx, connect errors.

        Returns the last response when it is not retryable or the retries are spent (the
        caller maps its status); raises :class:`PromptStoreUnavailable` when no response
        came. ``what`` names the prompt in messages ("prompt 'x' with label 'y'").
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                attempt = 0
                while True:
                    attempt += 1
                    outcome = await self._attempt(request, what, attempt, log)
                    if isinstance(outcome, httpx2.Response) and not _retryable(outcome):
                        return outcome
                    delay = self._retry_backoff * 2 ** (attempt - 1)
                    if attempt > self._retries or loop.time() + delay >= deadline:
                        if isinstance(outcome, httpx2.Response):
                            return outcome
                        raise PromptStoreUnavailable(
                            f"{self.at} could not be reached ({type(outcome).__name__}) "
                            f"while fetching {what}"
                        ) from outcome
                    await asyncio.sleep(delay)
        except TimeoutError as exc:
            raise self._timed_out(what) from exc

    def raise_for_status(
        self,
        response: httpx2.Response,
        what: str,
        *,
        not_found: str,
    ) -> NoReturn:
        """Raise the error a non-200 ``response`` means; ``not_found`` is the 404's message."""
        status = response.status_code
        if status == 404:
            if is_json_object(response.content):
                raise PromptNotFound(not_found, param="prompt_id")
            # The services answer 404 with JSON; an HTML or empty one comes from a proxy or
            # a wrong base URL, and "not found" would make the cache evict.
            raise PromptStoreUnavailable(
                f"{self.at} answered HTTP 404 without a JSON error body for {what}: "
                f"{self.text.check_base_url}"
            )
        if status in (401, 403):
            # The service's own message is not repeated: it could quote what it was sent.
            raise PromptStoreUnavailable(
                f"{self.at} refused {self.text.refused} (HTTP {status}) while fetching {what}: "
                f"{self.text.check_credentials}"
            )
        if status in (400, 422):
            message = error_detail(response.content)
            raise PromptStoreUnavailable(
                f"{self.at} rejected the request for {what} (HTTP {status})"
                + (f": {message}" if message else "")
            )
        if status == 429:
            raise PromptStoreUnavailable(
                f"{self.at} is rate-limiting requests (HTTP 429) for {what}"
            )
        if 300 <= status < 400:
            raise PromptStoreUnavailable(
                f"{self.at} answered with a redirect (HTTP {status}) for {what}; redirects "
                f"are not followed: {self.text.check_base_url}"
            )
        kind = "failed" if status >= 500 else "answered"
        raise PromptStoreUnavailable(f"{self.at} {kind} with HTTP {status} for {what}")

    def invalid(self, subject: str, cause: Exception) -> PromptStoreUnavailable:
        """A 200 whose body is not a prompt of the service's shape; ``subject``: "'x'"."""
        reason = str(cause)
        if isinstance(cause, msgspec.DecodeError) and not isinstance(
            cause, msgspec.ValidationError
        ):
            reason = f"the body is not JSON ({cause})"
        return PromptStoreUnavailable(
            f"{self.text.name} returned an invalid prompt for {subject}: {reason}"
        )

    async def _attempt(
        self, request: httpx2.Request, what: str, attempt: int, log: dict[str, Any]
    ) -> httpx2.Response | httpx2.TransportError:
        """One request; a connect error is returned rather than raised (worth a retry)."""
        started = time.perf_counter()
        try:
            response = await self.client().send(request, follow_redirects=False)
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
            logger.debug(
                self.text.log_event,
                attempt=attempt,
                error=type(exc).__name__,
                duration_ms=_ms(started),
                **log,
            )
            return exc
        except httpx2.TimeoutException as exc:
            raise self._timed_out(what) from exc
        except httpx2.HTTPError as exc:
            raise PromptStoreUnavailable(
                f"{self.at} failed while fetching {what} ({type(exc).__name__})"
            ) from exc
        logger.debug(
            self.text.log_event,
            attempt=attempt,
            status=response.status_code,
            duration_ms=_ms(started),
            **log,
        )
        return response

    def _timed_out(self, what: str) -> PromptStoreUnavailable:
        return PromptStoreUnavailable(
            f"{self.at} did not answer in time ({self.timeout:g}s) while fetching {what}"
        )


def path_segment(name: str) -> str:
    """``name`` as exactly one path segment: every reserved character percent-encoded.

    ``quote(safe="")`` leaves only unreserved characters (letters, digits, ``-._~``), so a
    ``/``, ``?``, ``#`` or ``:`` in the name cannot end the segment. ``.`` and ``..`` alone
    would still be dot segments that URL normalisation removes; they are encoded too.
    """
    segment = quote(name, safe="")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return segment


class _ErrorBody(msgspec.Struct, frozen=True):
    """An error body: Langfuse's ``{"message", "error"}`` or FastAPI's ``{"detail"}`` (a
    string, an object, or the 422 list of errors)."""

    detail: Any = None
    message: Any = None


_decode_error = msgspec.json.Decoder(_ErrorBody).decode
_MAX_DETAIL_CHARS = 300


def error_detail(body: bytes) -> str | None:
    """The service's own explanation of a 400/422, shortened; None when it gives none."""
    try:
        error = _decode_error(body)
    except msgspec.DecodeError:
        return None
    detail = error.detail if error.detail is not None else error.message
    if isinstance(detail, dict):
        detail = detail.get("msg") or detail.get("message") or detail.get("description")
    if isinstance(detail, list):
        # FastAPI's 422: [{"loc": ["query", "environment"], "msg": "...", "type": ...}, ...]
        parts = []
        for item in detail:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                loc = item.get("loc")
                where = ".".join(str(x) for x in loc) if isinstance(loc, list) else ""
                parts.append(f"{where}: {item['msg']}" if where else item["msg"])
        detail = "; ".join(parts)
    if not isinstance(detail, str) or not detail:
        return None
    return detail[:_MAX_DETAIL_CHARS]


def is_json_object(body: bytes) -> bool:
    try:
        return isinstance(msgspec.json.decode(body), dict)
    except msgspec.DecodeError:
        return False


def _retryable(response: httpx2.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
