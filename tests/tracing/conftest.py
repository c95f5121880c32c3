"""A ``Tracing`` whose batches land in memory, flushed on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from prompt_middleware.tracing import Tracing


class MemoryTracing:
    def __init__(self, *, content: bool = True) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracing = Tracing(self.exporter, content=content)

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span ended so far, through the batch processor and the exporter."""
        assert self.tracing.force_flush()
        return self.exporter.get_finished_spans()

    def only_span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, spans
        return spans[0]


@pytest.fixture
async def memory() -> AsyncIterator[MemoryTracing]:
    traced = MemoryTracing()
    yield traced
    await traced.tracing.aclose()


@pytest.fixture
async def memory_without_content() -> AsyncIterator[MemoryTracing]:
    traced = MemoryTracing(content=False)
    yield traced
    await traced.tracing.aclose()
