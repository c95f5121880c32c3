"""PROMPT_MIDDLEWARE_TRACES and the exporter behind it: checked once, at start-up."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx2
import pytest
from opentelemetry import trace

from prompt_middleware import PromptMiddleware, PromptTransport, Settings
from prompt_middleware.errors import ConfigurationError, PromptNotFound
from prompt_middleware.tracing import LangfuseTarget, Tracing, parse_trace_mode
from prompt_middleware.tracing.setup import OtlpExporter, build_exporter
from tests.conftest import RecordingApp
from tests.fakes.langfuse import FakeLangfuse
from tests.fakes.server import serve_in_background
from tests.tracing.conftest import flushed


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
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION"),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "many"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
    ],
)
def test_a_value_we_cannot_honour_stops_start_up_naming_its_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Tracing.from_values("otlp", environ=environ)


def test_the_traces_protocol_variable_wins() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    assert isinstance(build_exporter("otlp", langfuse=None, environ=environ), OtlpExporter)


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


# --- from the settings -------------------------------------------------------------------------


def test_traces_are_off_by_default_and_a_door_then_has_no_tracing() -> None:
    settings = Settings.from_env({})
    assert (settings.traces, settings.trace_content) == ("off", True)
    assert PromptMiddleware(RecordingApp(), settings).tracing is None


async def test_the_variables_turn_traces_on_and_content_off() -> None:
    settings = Settings.from_env(
        {"PROMPT_MIDDLEWARE_TRACES": "otlp", "PROMPT_MIDDLEWARE_TRACE_CONTENT": "false"}
    )
    door = PromptTransport(httpx2.MockTransport(lambda request: httpx2.Response(200)), settings)
    tracing = door.tracing
    assert tracing is not None
    assert tracing.content is False
    await door.aclose()  # the door made it, so the door closes it
    assert tracing.force_flush() is False  # shut down: nothing more is exported


def test_an_unknown_trace_mode_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"PROMPT_MIDDLEWARE_TRACES='jaeger'"):
        Settings.from_env({"PROMPT_MIDDLEWARE_TRACES": "jaeger"})


def test_langfuse_mode_without_the_keys_stops_a_door_at_start_up() -> None:
    settings = Settings.from_env({"PROMPT_MIDDLEWARE_TRACES": "langfuse"})
    with pytest.raises(ConfigurationError, match="LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY"):
        PromptMiddleware(RecordingApp(), settings)


async def test_langfuse_mode_takes_the_store_keys_and_host() -> None:
    fake = FakeLangfuse(public_key="pk-lf-1", secret_key="sk-lf-1")
    async with serve_in_background(fake.app) as url:
        settings = Settings.from_env(
            {
                "PROMPT_MIDDLEWARE_TRACES": "langfuse",
                "LANGFUSE_PUBLIC_KEY": "pk-lf-1",
                "LANGFUSE_SECRET_KEY": "sk-lf-1",
                "LANGFUSE_HOST": url + "/",  # read as the Langfuse SDK reads it
            }
        )
        tracing = Tracing.from_settings(settings)
        assert tracing is not None
        tracing.record_error(PromptNotFound("no such prompt"), started=time.perf_counter())
        await flushed(tracing)
        await tracing.aclose()
    [span] = fake.trace_spans
    assert span.attributes["error.type"] == "prompt_not_found"


def test_http_protobuf_without_opentelemetry_proto_is_a_clear_start_up_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.proto.collector.trace.v1", None)
    with pytest.raises(ConfigurationError, match=r"prompt-middleware\[protobuf\]"):
        Tracing.from_values("otlp", environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})


def test_no_opentelemetry_sdk_exporter_or_protobuf_is_imported_with_traces_on() -> None:
    # In a process of its own: this one has imported the SDK for other tests.
    script = (
        "import sys, time\n"
        "from prompt_middleware.tracing import Tracing\n"
        "from prompt_middleware.request import decode_body\n"
        "tracing = Tracing.from_values('otlp', environ={})\n"
        'tracing.start(decode_body(b\'{"model": "m"}\'), prompt=None, start_ns=1).end()\n'
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk', "
        "'opentelemetry.exporter', 'opentelemetry.proto', 'google.protobuf'))))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert shown.stdout.strip() == "[]"
