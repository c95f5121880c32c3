"""Sending an encoded batch over OTLP/HTTP, from the exporter's thread.

``urllib`` from the standard library: the thread sends a batch every few seconds at most, so
a connection per batch costs nothing that matters, and nothing here ever runs on the event
loop. What the OTLP specification calls retryable (429, 502, 503, 504, and a connection that
fails) is tried again with exponential back-off, a ``Retry-After`` honoured, all within the
export's deadline; anything else is given up at once and logged.
"""

from __future__ import annotations

import gzip
import random
import ssl
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Final

import structlog

__all__ = ["OtlpHttpSender"]

logger = structlog.get_logger(__name__)

RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})
_FIRST_BACKOFF_SECONDS: Final = 1.0

_COMPRESSORS: Final[Mapping[str, Callable[[bytes | bytearray], bytes]]] = {
    "gzip": lambda body: gzip.compress(body, compresslevel=6, mtime=0),
    "deflate": zlib.compress,
}


class OtlpHttpSender:
    """POSTs bodies to one endpoint with fixed headers, compression and timeout."""

    def __init__(
        self,
        endpoint: str,
        *,
        content_type: str,
        headers: Mapping[str, str],
        timeout_seconds: float,
        compression: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._headers = {**headers, "Content-Type": content_type}
        self._compress = None
        if compression is not None:
            self._compress = _COMPRESSORS[compression]
            self._headers["Content-Encoding"] = compression
        self._timeout = timeout_seconds
        self._ssl_context = ssl_context
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Cut short a back-off in progress (at shutdown)."""
        self._stopping.set()

    def send(self, body: bytes | bytearray, deadline_seconds: float | None = None) -> bool:
        """Send one batch; True once the endpoint accepted it, False when given up."""
        if self._compress is not None:
            body = self._compress(body)
        limit = self._timeout if deadline_seconds is None else min(self._timeout, deadline_seconds)
        deadline = time.monotonic() + limit
        backoff = _FIRST_BACKOFF_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.warning("trace_export_failed", reason="deadline")
                return False
            status, retry_after = self._post(body, remaining)
            if status is not None and 200 <= status < 300:
                return True
            if status is not None and status not in RETRYABLE_STATUSES:
                logger.warning("trace_export_refused", status=status)
                return False
            # Jittered as OpenTelemetry's exporters do, so that replicas do not retry at once.
            delay = retry_after if retry_after is not None else backoff * random.uniform(0.8, 1.2)  # noqa: S311
            if delay > deadline - time.monotonic():
                logger.warning("trace_export_failed", status=status, reason="retries exhausted")
                return False
            if self._stopping.wait(delay):
                return False
            backoff *= 2

    def _post(self, body: bytes | bytearray, timeout: float) -> tuple[int | None, float | None]:
        """The answer's status (None: no answer) and its ``Retry-After`` in seconds."""
        # The endpoint's scheme is http or https: checked at start-up (setup.py).
        request = urllib.request.Request(  # noqa: S310
            self._endpoint, data=body, headers=self._headers, method="POST"
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=timeout, context=self._ssl_context
            ) as r:
                r.read()
                return int(r.status), None
        except urllib.error.HTTPError as error:
            error.close()
            return error.code, _retry_after(error.headers.get("Retry-After"))
        except (OSError, ValueError):  # refused, reset, timed out, a bad answer
            return None, None


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date; None when absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
