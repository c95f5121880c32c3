"""The one canonical log line per request, and the observer call beside it.

Shared by every door onto the engine (the ASGI middleware, the httpx2 transport), so a request
is reported the same way whichever way it came in.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import structlog

from prompt_middleware.engine import RewriteResult
from prompt_middleware.errors import RequestError
from prompt_middleware.observe import Observer

__all__ = ["enabled", "passed_on_is_reported", "report_error", "report_request"]

logger = structlog.get_logger("prompt_middleware")


def report_request(
    *,
    route: str,
    request_id: str | None,
    result: RewriteResult | None,
    status: int,
    overhead_seconds: float,
    duration_seconds: float,
    observer: Observer | None,
) -> None:
    """Log ``prompt_request`` (debug for a request passed on unchanged) and observe it."""
    if observer is not None:
        cache = result.cache_status.value if result is not None and result.cache_status else None
        observer.request(route, status, cache, overhead_seconds)
        if (
            result is not None
            and result.variant_name is not None
            and result.experiment_name is not None
        ):
            observer.experiment_request(result.experiment_name, result.variant_name)
    log = logger.bind()
    if result is None:
        if enabled(log, logging.DEBUG):
            log.debug(
                "prompt_request",
                route=route,
                request_id=request_id,
                status=status,
                managed=False,
                duration_ms=_ms(duration_seconds),
            )
        return
    if not enabled(log, logging.INFO):
        return  # the level is off: build nothing
    fields: dict[str, Any] = {
        "route": route,
        "request_id": request_id or _new_request_id(),
        "model": result.model,
        "status": status,
        "overhead_ms": _ms(overhead_seconds),
        "duration_ms": _ms(duration_seconds),
    }
    if result.prompt is not None:
        fields.update(
            prompt=result.prompt.name,
            version=result.prompt.version,
            store=result.store,
            cache=result.cache_status.value if result.cache_status else None,
        )
        if result.variant_name is not None:
            fields.update(experiment=result.experiment_name, variant=result.variant_name)
        if result.replaced is not None:
            fields["replaced"] = result.replaced  # the client's own system text
    log.info("prompt_request", **fields)


def passed_on_is_reported(observer: Observer | None) -> bool:
    """Whether a request passed on unchanged is reported at all: it is logged at debug."""
    return observer is not None or enabled(logger.bind(), logging.DEBUG)


def enabled(log: Any, level: int) -> bool:
    """Whether ``log`` (a bound structlog logger) would emit at ``level``.

    structlog's filtering loggers and its stdlib logger both answer ``is_enabled_for``; a
    logger that cannot say is taken to emit everything.
    """
    is_enabled_for = getattr(log, "is_enabled_for", None)
    return is_enabled_for is None or bool(is_enabled_for(level))


def report_error(
    *,
    route: str,
    request_id: str | None,
    error: RequestError,
    duration_seconds: float,
    observer: Observer | None,
) -> None:
    """Log a request the middleware answered with an error, and observe it."""
    if observer is not None:
        observer.request(route, error.status_code, None, duration_seconds)
    logger.info(
        "prompt_request",
        route=route,
        request_id=request_id or _new_request_id(),
        status=error.status_code,
        error=error.code,
        message=error.message,
        duration_ms=_ms(duration_seconds),
    )


def _new_request_id() -> str:
    # Made only for a line that is logged, and cheaply (64 random bits, not a full UUID): a
    # request passed on unchanged never pays for it.
    return os.urandom(8).hex()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
