"""What the two doors onto the engine share: ``PromptMiddleware`` (ASGI) and ``PromptTransport``
(httpx2) take a request the same way, and differ only in how bytes come in and go out.

Each door's ``_handle`` has the same four steps:

1. read the body, refusing one over ``PROMPT_MIDDLEWARE_MAX_BODY_BYTES`` (``body.py``);
2. rewrite it (:attr:`Door.engine`); a failure becomes the error to answer
   (:meth:`Door.failure`, which reports it);
3. pass the request on, the ``x-prompt-*`` headers added to the response (:func:`prompt_headers`);
4. report it (:func:`~prompt_middleware.report.report_request`).

With traces on (README, "Traces") a door also has a :class:`~prompt_middleware.tracing.Tracing`:
step 3 runs inside the request's span, and a failure in step 1 or 2 is a span of its own. With
traces off there is none, and checking that is all a request pays.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Final

import structlog

from prompt_middleware.engine import RewriteEngine, RewriteResult
from prompt_middleware.errors import RequestError
from prompt_middleware.observe import Observer
from prompt_middleware.report import report_error
from prompt_middleware.settings import Settings
from prompt_middleware.stores.base import PromptStore
from prompt_middleware.tracing import Tracing

__all__ = ["OVERHEAD_HEADER", "Door", "prompt_headers"]

logger = structlog.get_logger(__name__)

OVERHEAD_HEADER: Final = b"x-prompt-middleware-overhead-ms"


class Door:
    """The state both doors set up once: settings, the engine, the observer, the body limit,
    and the tracing (``tracing``, else the one the settings ask for; None when traces are off).
    A door closes the tracing it made; one passed in is its owner's to close (it may serve
    several doors).
    """

    def __init__(
        self,
        settings: Settings | None,
        stores: Mapping[str, PromptStore] | None,
        observer: Observer | None,
        tracing: Tracing | None = None,
    ) -> None:
        self._settings = settings if settings is not None else Settings.from_env()
        self._observer = observer
        self._engine = RewriteEngine(self._settings, stores=stores, observer=observer)
        self._max_body_bytes = self._settings.max_body_bytes
        self._tracing = tracing if tracing is not None else Tracing.from_settings(self._settings)
        self._owns_tracing = tracing is None

    @property
    def engine(self) -> RewriteEngine:
        return self._engine

    @property
    def tracing(self) -> Tracing | None:
        """The door's spans and their export; None when traces are off."""
        return self._tracing

    async def aclose(self) -> None:
        """Close the engine, then export the spans still queued of a tracing the door made
        (for at most 5 s)."""
        try:
            await self._engine.aclose()
        finally:
            if self._tracing is not None and self._owns_tracing:
                await self._tracing.aclose()

    def failure(
        self,
        exc: Exception,
        route: str,
        request_id: str | None,
        started: float,
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes | None = None,
    ) -> RequestError:
        """The error to answer for a request whose body could not be read or rewritten;
        with traces on, recorded as a span (``headers``: the request's, for its context;
        ``body``, when it was read, for what the request said)."""
        error = self._error_of(exc, route, request_id, started)
        if self._tracing is not None:
            self._tracing.record_error(error, started=started, body=body, headers=headers)
        return error

    def _error_of(
        self, exc: Exception, route: str, request_id: str | None, started: float
    ) -> RequestError:
        if isinstance(exc, RequestError):
            report_error(
                route=route,
                request_id=request_id,
                error=exc,
                duration_seconds=time.perf_counter() - started,
                observer=self._observer,
            )
            return exc
        # A bug of ours, not the client's: logged with its traceback, answered as a 500.
        logger.exception("prompt_request_failed", route=route, request_id=request_id)
        return RequestError("prompt-middleware failed to rewrite the request.")


def prompt_headers(
    result: RewriteResult, overhead_seconds: float
) -> tuple[tuple[bytes, bytes], ...]:
    """The response headers of a rewritten request: its ``x-prompt-*`` and the overhead."""
    return (*result.headers, (OVERHEAD_HEADER, b"%.3f" % (overhead_seconds * 1000)))
