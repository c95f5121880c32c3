"""OpenTelemetry's batch span processor, with the spans it drops counted.

The SDK's ``BatchSpanProcessor`` (1.45) keeps ended spans in a ``collections.deque`` bounded
by ``OTEL_BSP_MAX_QUEUE_SIZE``; a worker thread exports them in batches every
``OTEL_BSP_SCHEDULE_DELAY`` ms, or sooner once ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` are
waiting. When a span ends with the queue full, the deque makes room by evicting the oldest
span — one span is lost per span that finds the queue full. The SDK reports that only as a
warning it de-duplicates, and as its ``otel.sdk.processor.span.processed`` metric, which is
off unless ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`` is set in the process environment.

So this subclass counts the loss itself, where it happens: a sampled span that ends while
the queue is full. It reads the queue's length through the processor's queue object (the
SDK exposes no public accessor); a test pins that behaviour, so an SDK release that changes
it fails the suite instead of silently counting nothing.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from prompt_middleware.errors import ConfigurationError

__all__ = ["DropCountingBatchSpanProcessor"]


class DropCountingBatchSpanProcessor(BatchSpanProcessor):
    """A ``BatchSpanProcessor`` (``OTEL_BSP_*`` honoured) that counts the spans it drops."""

    def __init__(self, exporter: SpanExporter) -> None:
        super().__init__(exporter)
        self._queue = _queue_of(self)
        self._capacity = self._queue.maxlen
        #: Spans lost because the queue was full when they ended (read by ``/metrics``).
        self.dropped = 0

    def on_end(self, span: ReadableSpan) -> None:
        # A += on an int is not atomic across threads, but spans end on the event loop's
        # thread only; the worker thread only takes spans out, which cannot cause a drop.
        context = span.context
        if len(self._queue) == self._capacity and context and context.trace_flags.sampled:
            self.dropped += 1
        super().on_end(span)


def _queue_of(processor: BatchSpanProcessor) -> deque[Any]:
    batch_processor = getattr(processor, "_batch_processor", None)
    queue = getattr(batch_processor, "_queue", None)
    if not isinstance(queue, deque) or queue.maxlen is None:
        raise ConfigurationError(
            "This opentelemetry-sdk release keeps its span queue differently: "
            "prompt-middleware cannot count dropped spans (PROMPT_MIDDLEWARE_TRACES)."
        )
    return queue
