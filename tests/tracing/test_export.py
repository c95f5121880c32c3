"""Spans leave over real OTLP/HTTP to a real receiver, in batches, off the request path."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import AsyncIterator, Sequence

import pytest

from prompt_middleware.request import decode_body
from prompt_middleware.tracing import (
    BatchSettings,
    LangfuseTarget,
    PromptLink,
    SpanRecord,
    Tracing,
)
from tests.fakes.otlp import FakeCollector, ReceivedExport, ReceivedSpan
from tests.tracing.conftest import flushed

BODY = b'{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"user":"u-1"}'
LINK = PromptLink(name="greeting", version=7, store="langfuse", cache="hit", label="production")
PUBLIC_KEY = "pk-lf-public-1234"
SECRET_KEY = "sk-lf-secret-5678"


@pytest.fixture
async def collector() -> AsyncIterator[tuple[FakeCollector, str]]:
    fake = FakeCollector()
    async with fake.serve() as base_url:
        yield fake, base_url


def _one_request(tracing: Tracing) -> None:
    span = tracing.start(decode_body(BODY), prompt=LINK, start_ns=1)
    span.response_start(200, b"application/json")
    span.response_chunk(b'{"model":"gpt-4o-1","usage":{"prompt_tokens":9,"completion_tokens":4}}')
    span.end()


async def test_otlp_mode_follows_the_standard_variables(
    collector: tuple[FakeCollector, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    span, export = await _exported_with(
        collector,
        monkeypatch,
        {"OTEL_EXPORTER_OTLP_HEADERS": "x-team=ml", "OTEL_SERVICE_NAME": "support-bot"},
    )
    assert export.headers["x-team"] == "ml"
    assert export.headers["content-type"] == "application/json"
    assert span.resource["service.name"] == "support-bot"
    assert span.scope == "prompt_middleware"
    assert span.name == "chat gpt-4o"
    assert span.kind == 3  # CLIENT
    assert span.attributes["gen_ai.usage.input_tokens"] == 9
    assert span.attributes["gen_ai.usage.output_tokens"] == 4
    assert span.attributes["gen_ai.request.max_tokens"] == 5
    assert span.attributes["langfuse.observation.prompt.version"] == 7


async def test_the_default_service_name(
    collector: tuple[FakeCollector, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", base_url + "/v1/traces")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    span = await _one_exported_span(fake)
    assert span.resource["service.name"] == "prompt-middleware"


async def _exported_with(
    collector: tuple[FakeCollector, str],
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
) -> tuple[ReceivedSpan, ReceivedExport]:
    """One request's span and the one export that carried it, with the collector as the
    endpoint and ``variables`` set."""
    fake, base_url = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base_url)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    span = await _one_exported_span(fake)
    [export] = fake.exports
    return span, export


async def _one_exported_span(fake: FakeCollector) -> ReceivedSpan:
    """One request's span, as the OTLP exporter configured by the environment sent it."""
    tracing = Tracing.from_values("otlp")
    assert tracing is not None
    try:
        _one_request(tracing)
        await flushed(tracing)
        [span] = await fake.wait_for_spans(1)
    finally:
        await tracing.aclose()
    return span


async def _langfuse_spans(target: LangfuseTarget, fake: FakeCollector) -> list[ReceivedSpan]:
    tracing = Tracing.from_values("langfuse", langfuse=target)
    assert tracing is not None
    try:
        _one_request(tracing)
        await flushed(tracing)
    finally:
        await tracing.aclose()
    return fake.spans


async def test_langfuse_mode_posts_to_the_otel_endpoint_with_basic_auth() -> None:
    fake = FakeCollector(path="/api/public/otel/v1/traces", basic_auth=(PUBLIC_KEY, SECRET_KEY))
    async with fake.serve() as base_url:
        spans = await _langfuse_spans(LangfuseTarget(base_url + "/", PUBLIC_KEY, SECRET_KEY), fake)
    [span] = spans
    assert span.attributes["langfuse.observation.prompt.name"] == "greeting"
    assert fake.refused == []


async def test_langfuse_mode_with_wrong_keys_is_refused_and_nothing_breaks() -> None:
    fake = FakeCollector(path="/api/public/otel/v1/traces", basic_auth=(PUBLIC_KEY, SECRET_KEY))
    async with fake.serve() as base_url:
        spans = await _langfuse_spans(LangfuseTarget(base_url, PUBLIC_KEY, "wrong"), fake)
    assert spans == []
    assert fake.refused == [401]


async def test_no_key_or_authorization_value_in_any_exported_attribute() -> None:
    fake = FakeCollector(path="/api/public/otel/v1/traces", basic_auth=(PUBLIC_KEY, SECRET_KEY))
    async with fake.serve() as base_url:
        spans = await _langfuse_spans(LangfuseTarget(base_url, PUBLIC_KEY, SECRET_KEY), fake)
    authorization = fake.exports[0].headers["authorization"]
    assert spans
    for span in spans:
        for value in [*span.attributes.values(), *span.resource.values(), span.name]:
            text = str(value)
            for secret in (SECRET_KEY, PUBLIC_KEY, authorization, authorization.split()[1]):
                assert secret not in text


async def test_a_refusing_collector_changes_nothing(collector: tuple[FakeCollector, str]) -> None:
    fake, base_url = collector
    fake.mode = "refuse"
    tracing = Tracing.from_values(
        "langfuse", langfuse=LangfuseTarget(base_url, PUBLIC_KEY, SECRET_KEY)
    )
    assert tracing is not None
    fake.path = "/api/public/otel/v1/traces"
    try:
        for _ in range(3):
            _one_request(tracing)
        await flushed(tracing)
    finally:
        await tracing.aclose()
    assert fake.refused == [500]  # one batch, not retried: a 500 is not a transient error
    assert tracing.dropped_spans == 0


async def test_a_hanging_collector_fills_the_queue_and_drops_are_counted(
    collector: tuple[FakeCollector, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = collector
    fake.mode = "hang"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base_url)
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
    tracing = Tracing.from_values("otlp")
    assert tracing is not None
    try:
        for _ in range(2):  # a full batch wakes the exporter thread, which then hangs
            _one_request(tracing)
        await fake.wait_for_hanging(1)
        for _ in range(1000):  # every request still completes at once
            _one_request(tracing)
        assert tracing.dropped_spans == 1000 - 8  # the queue holds 8; the rest are lost
        assert fake.spans == []
    finally:
        fake.release()
        await tracing.aclose()
    # Once the collector answers, the queued spans leave at shutdown.
    assert len(await fake.wait_for_spans(2 + 8)) == 10


async def test_closing_does_not_wait_for_a_collector_that_hangs(
    collector: tuple[FakeCollector, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = collector
    fake.mode = "hang"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base_url)
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
    tracing = Tracing.from_values("otlp")
    assert tracing is not None
    _one_request(tracing)
    await fake.wait_for_hanging(1)
    await tracing.aclose(timeout_seconds=0.05)
    assert fake.hanging == 1  # closed while the export still hangs
    await tracing.aclose()  # twice is fine


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"]
)
async def test_gzip_when_asked(
    collector: tuple[FakeCollector, str], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    span, export = await _exported_with(collector, monkeypatch, {variable: "gzip"})
    assert export.headers["content-encoding"] == "gzip"
    assert export.headers["content-type"] == "application/json"
    assert gzip.decompress(export.body).startswith(b'{"resourceSpans":')
    assert span.attributes["gen_ai.usage.input_tokens"] == 9


async def test_http_protobuf_when_asked(
    collector: tuple[FakeCollector, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    span, export = await _exported_with(
        collector, monkeypatch, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}
    )
    assert export.headers["content-type"] == "application/x-protobuf"
    assert export.request.SerializeToString() == export.body  # binary protobuf, as sent
    assert span.attributes["langfuse.observation.prompt.version"] == 7
    assert span.attributes["gen_ai.request.max_tokens"] == 5


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_a_retryable_answer_is_retried(
    collector: tuple[FakeCollector, str], monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    fake, base_url = collector
    fake.unavailable = [status, status]  # then 200: Retry-After 0 makes the retries immediate
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base_url)
    span = await _one_exported_span(fake)
    assert fake.refused == [status, status]
    assert span.name == "chat gpt-4o"
    assert len(fake.exports) == 1


async def test_retries_stop_at_the_deadline(
    collector: tuple[FakeCollector, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = collector
    fake.unavailable = [503] * 1000
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base_url)
    monkeypatch.setenv("OTEL_BSP_EXPORT_TIMEOUT", "300")  # ms: a deadline, not a timing
    tracing = Tracing.from_values("otlp")
    assert tracing is not None
    try:
        _one_request(tracing)
        await flushed(tracing)  # returns: the batch was given up at its deadline
    finally:
        await tracing.aclose()
    assert fake.exports == []
    assert 1 <= len(fake.refused) < 1000


async def test_a_span_that_starts_while_the_queue_is_full_records_nothing_and_is_counted() -> None:
    """An export that cannot keep up costs the requests no span work thrown away: a span that
    starts with the queue full is dropped at once, counted, and still says sampled upstream."""
    entered, release = threading.Event(), threading.Event()

    class StuckExporter:
        def export(self, spans: Sequence[SpanRecord], timeout_seconds: float) -> bool:
            entered.set()
            release.wait()
            return True

        def shutdown(self) -> None:
            release.set()

    batches = BatchSettings(max_queue_size=2, max_export_batch_size=1)
    tracing = Tracing(StuckExporter(), batches=batches, environ={})
    try:
        _one_request(tracing)  # a whole batch: the export thread takes it, and hangs
        await asyncio.to_thread(entered.wait)
        _one_request(tracing)
        _one_request(tracing)  # the queue holds two: it is full
        assert tracing.dropped_spans == 0
        span = tracing.start(decode_body(BODY), prompt=LINK, start_ns=1)
        assert (span.recording, span.sampled) == (False, True)
        assert span.trace_headers()["traceparent"].endswith("-01")
        assert tracing.dropped_spans == 1  # counted when it started
        span.end()
        assert tracing.dropped_spans == 1  # and not again when it ended
    finally:
        release.set()
        await tracing.aclose()
