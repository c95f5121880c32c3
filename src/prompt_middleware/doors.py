"""What the two doors onto the engine share: ``PromptMiddleware`` (ASGI) and ``PromptTransport``
(httpx) take a request the same way, and differ only in how bytes come in and go out.

Each door's ``_handle`` has the same four steps:

1. read the body, refusing one over ``PROMPT_MIDDLEWARE_MAX_BODY_BYTES`` (:func:`too_large`);
2. rewrite it (:attr:`Door.engine`); a failure becomes the error to answer
   (:meth:`Door.failure`, which reports it);
3. pass the request on, the ``x-prompt-*`` headers added to the response (:func:`prompt_headers`);
4. report it (:func:`~prompt_middleware.report.report_request`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

import structlog

from prompt_middleware.engine import RewriteEngine, RewriteResult
from prompt_middleware.errors import RequestError, RequestTooLarge
from prompt_middleware.observe import Observer
from prompt_middleware.report import report_error
from prompt_middleware.settings import Settings
from prompt_middleware.stores.base import PromptStore

__all__ = ["OVERHEAD_HEADER", "Door", "prompt_headers", "too_large"]

logger = structlog.get_logger(__name__)

OVERHEAD_HEADER: Final = b"x-prompt-middleware-overhead-ms"


class Door:
    """The state both doors set up once: settings, the engine, the observer, the body limit."""

    def __init__(
        self,
        settings: Settings | None,
        stores: Mapping[str, PromptStore] | None,
        observer: Observer | None,
    ) -> None:
        self._settings = settings if settings is not None else Settings.from_env()
        self._observer = observer
        self._engine = RewriteEngine(self._settings, stores=stores, observer=observer)
        self._max_body_bytes = self._settings.max_body_bytes

    @property
    def engine(self) -> RewriteEngine:
        return self._engine

    def failure(
        self, exc: Exception, route: str, request_id: str | None, started: float
    ) -> RequestError:
        """The error to answer for a request whose body could not be read or rewritten."""
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


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"The request body is larger than {limit} bytes (PROMPT_MIDDLEWARE_MAX_BODY_BYTES)."
    )


def prompt_headers(
    result: RewriteResult, overhead_seconds: float
) -> tuple[tuple[bytes, bytes], ...]:
    """The response headers of a rewritten request: its ``x-prompt-*`` and the overhead."""
    return (*result.headers, (OVERHEAD_HEADER, b"%.3f" % (overhead_seconds * 1000)))
