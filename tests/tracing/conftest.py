"""What the traces tests share: a ``Tracing`` whose batches land in memory, the environment
every export test starts from, and a door driven by the openai SDK with its collector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from prompt_middleware.tracing import Tracing
from tests.fakes.otlp import FakeCollector, ReceivedSpan
from tests.fakes.upstream import FakeUpstream
from tests.tracing.sdk_spans import MemoryExporter

#: The example folder's prompt, as the SDK tests ask for it (``extra_body``).
PROMPT_FIELDS = {
    "prompt_id": "support/answer",
    "prompt_variables": {"product": "Acme", "language": "German"},
}

_OTLP_CHOICES = (
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


@pytest.fixture(autouse=True)
def _otlp_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing leaves on a timer (only flushes, full batches and shutdown), a hang stays a
    hang, and the protocol, compression and sampler are the defaults unless a test says."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "600")
    for name in _OTLP_CHOICES:
        monkeypatch.delenv(name, raising=False)


async def flushed(tracing: Tracing) -> None:
    """Export every span ended so far (blocking: in a thread, as the receiver runs on this
    event loop)."""
    assert await asyncio.to_thread(tracing.force_flush)


@dataclass
class Running:
    """A door under the real openai SDK, the fake upstream behind it, and the collector its
    spans go to (``url``: the sidecar's, when the door is one)."""

    client: openai.AsyncOpenAI
    tracing: Tracing
    upstream: FakeUpstream
    collector: FakeCollector
    url: str = ""

    async def spans(self, count: int) -> list[ReceivedSpan]:
        """Flush and wait for ``count`` spans at the collector."""
        await flushed(self.tracing)
        return await self.collector.wait_for_spans(count)


class MemoryTracing:
    def __init__(self, *, content: bool = True) -> None:
        self.exporter = MemoryExporter()
        self.tracing = Tracing(self.exporter, content=content)

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span ended so far, through the batch export, as the SDK would hold it."""
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
