"""Ended spans leave in batches, from a thread of their own, through a bounded queue.

The OpenTelemetry batch span processor's rules (``OTEL_BSP_*``): a span that ends joins the
queue (``OTEL_BSP_MAX_QUEUE_SIZE``, default 2048), or is dropped and counted when the queue
is full; the thread exports up to ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` (512) spans at a time,
every ``OTEL_BSP_SCHEDULE_DELAY`` ms (5000) or as soon as a whole batch waits, each export
bounded by ``OTEL_BSP_EXPORT_TIMEOUT`` ms (30000). Encoding happens there too: what the event
loop pays per span is one ``deque.append``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import structlog

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.tracing.record import SpanRecord

__all__ = ["BatchExport", "BatchSettings", "SpanExporter"]

logger = structlog.get_logger(__name__)

_FLUSH_TIMEOUT_SECONDS: Final = 30.0


class SpanExporter(Protocol):
    """Where batches go: OTLP over HTTP in production, memory in tests."""

    def export(self, spans: Sequence[SpanRecord], timeout_seconds: float) -> bool:
        """Export one batch (blocking); True when it was accepted."""
        ...

    def shutdown(self) -> None:
        """Cut short any wait between retries: the process is stopping."""
        ...


@dataclass(frozen=True, slots=True)
class BatchSettings:
    schedule_delay_seconds: float = 5.0
    max_queue_size: int = 2048
    max_export_batch_size: int = 512
    export_timeout_seconds: float = 30.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> BatchSettings:
        """``OTEL_BSP_*``; a value that is not a positive number is a start-up error."""
        queue = _positive(environ, "OTEL_BSP_MAX_QUEUE_SIZE", 2048)
        batch = _positive(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)
        if batch > queue:
            raise ConfigurationError(
                f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE={batch} is larger than "
                f"OTEL_BSP_MAX_QUEUE_SIZE={queue}."
            )
        return cls(
            schedule_delay_seconds=_positive(environ, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000,
            max_queue_size=queue,
            max_export_batch_size=batch,
            export_timeout_seconds=_positive(environ, "OTEL_BSP_EXPORT_TIMEOUT", 30000) / 1000,
        )


def _positive(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) == 0:
        raise ConfigurationError(f"{name}={value!r} is not a positive whole number.")
    return int(value)


class BatchExport:
    """The queue and the thread that empties it (started with the first span)."""

    def __init__(self, exporter: SpanExporter, settings: BatchSettings) -> None:
        self._exporter = exporter
        self._settings = settings
        self._queue: deque[SpanRecord] = deque()
        self._capacity = settings.max_queue_size
        self._batch_size = settings.max_export_batch_size
        self._wake = threading.Condition()
        # One export at a time: the thread's, or a flush's in the caller's thread.
        self._exporting = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        #: Spans lost because the queue was full when they ended (read by ``/metrics``).
        self.dropped = 0

    def add(self, record: SpanRecord) -> None:
        """Queue an ended span (on the event loop: no lock unless a batch is complete)."""
        queue = self._queue
        if len(queue) >= self._capacity:
            # A += on an int is not atomic across threads, but spans end on the event loop's
            # thread only; the export thread only takes spans out, which causes no drop.
            self.dropped += 1
            return
        queue.append(record)
        if self._thread is None:
            self._start()
        if len(queue) == self._batch_size:
            with self._wake:
                self._wake.notify()

    def admit(self) -> bool:
        """Whether a span starting now is to record: False when the queue is full, and the
        span is then counted as dropped at once (it would record what is lost anyway)."""
        if len(self._queue) < self._capacity:
            return True
        self.dropped += 1
        return False

    def force_flush(self, timeout_seconds: float = _FLUSH_TIMEOUT_SECONDS) -> bool:
        """Export every queued span in the calling thread (blocking); False once shut down
        or when an export in progress does not end in time."""
        if self._closed:
            return False
        if not self._exporting.acquire(timeout=timeout_seconds):
            return False
        try:
            self._export_all()
        finally:
            self._exporting.release()
        return True

    def shutdown(self) -> None:
        """Export what is queued and stop the thread (blocking: call it off the event loop)."""
        if self._closed:
            return
        self._closed = True
        self._exporter.shutdown()  # a retry's back-off must not hold up the last export
        thread = self._thread
        if thread is None:
            with self._exporting:
                self._export_all()
        else:
            with self._wake:
                self._stopping = True
                self._wake.notify()
            thread.join()

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="prompt-middleware-trace-export", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        delay = self._settings.schedule_delay_seconds
        next_export = time.monotonic() + delay
        while True:
            with self._wake:
                while (
                    not self._stopping
                    and len(self._queue) < self._batch_size
                    and (wait := next_export - time.monotonic()) > 0
                ):
                    self._wake.wait(wait)
                stopping = self._stopping
            with self._exporting:
                if stopping or time.monotonic() >= next_export:
                    self._export_all()
                    next_export = time.monotonic() + delay
                else:
                    while len(self._queue) >= self._batch_size:
                        self._export_batch()
            if stopping:
                return

    def _export_all(self) -> None:
        while self._queue:
            self._export_batch()

    def _export_batch(self) -> None:
        queue = self._queue
        batch = [queue.popleft() for _ in range(min(self._batch_size, len(queue)))]
        try:
            self._exporter.export(batch, self._settings.export_timeout_seconds)
        except Exception:  # an exporter's bug must not end the thread: later spans still go
            logger.exception("trace_export_crashed")
