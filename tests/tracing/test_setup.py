"""PROMPT_MIDDLEWARE_TRACES and the exporter behind it: checked once, at start-up."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.tracing import LangfuseTarget, Tracing, parse_trace_mode
from prompt_middleware.tracing.processor import _queue_of
from prompt_middleware.tracing.setup import build_exporter


@pytest.mark.parametrize(
    ("value", "mode"), [("off", "off"), (" Langfuse ", "langfuse"), ("OTLP", "otlp")]
)
def test_modes(value: str, mode: str) -> None:
    assert parse_trace_mode(value) == mode


def test_an_unknown_mode_is_named_in_the_error() -> None:
    with pytest.raises(
        ConfigurationError, match=r"PROMPT_MIDDLEWARE_TRACES='jaeger'.*off, langfuse, otlp"
    ):
        parse_trace_mode("jaeger")


def test_off_is_no_tracing_at_all() -> None:
    assert Tracing.from_values("off") is None


def test_langfuse_mode_needs_the_keys() -> None:
    with pytest.raises(ConfigurationError, match="LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY"):
        Tracing.from_values("langfuse", langfuse=None)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ),
    ],
)
def test_another_otlp_protocol_is_refused(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        build_exporter("otlp", langfuse=None, environ=environ)


def test_the_traces_protocol_variable_wins() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    assert isinstance(build_exporter("otlp", langfuse=None, environ=environ), OTLPSpanExporter)


def test_the_langfuse_target_never_shows_its_secret() -> None:
    target = LangfuseTarget("https://cloud.langfuse.com", "pk-lf-1", "sk-lf-very-secret")
    assert "sk-lf-very-secret" not in repr(target)
    assert "sk-lf-very-secret" not in str(target)


async def test_tracing_installs_no_global_provider() -> None:
    tracing = Tracing.from_values("otlp", environ={})
    assert tracing is not None
    try:
        assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    finally:
        await tracing.aclose()


def test_an_sdk_that_keeps_its_queue_otherwise_is_a_start_up_error() -> None:
    processor = BatchSpanProcessor(InMemorySpanExporter())
    batch_processor = processor._batch_processor
    try:
        processor._batch_processor = object()  # type: ignore[assignment]
        with pytest.raises(ConfigurationError, match="cannot count dropped spans"):
            _queue_of(processor)
    finally:
        processor._batch_processor = batch_processor
        processor.shutdown()  # type: ignore[no-untyped-call]
