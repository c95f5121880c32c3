"""Where spans go: the exporter for ``PROMPT_MIDDLEWARE_TRACES``, and the provider behind it.

* ``langfuse`` — OTLP/HTTP (protobuf) to ``{Langfuse host}/api/public/otel/v1/traces``, Basic
  auth with the Langfuse keys (Langfuse's OpenTelemetry endpoint).
* ``otlp`` — any OpenTelemetry backend: the SDK's exporter reads the standard
  ``OTEL_EXPORTER_OTLP_*`` variables (endpoint, headers, timeout, compression, certificates)
  itself; the service name is ``OTEL_SERVICE_NAME`` (default ``prompt-middleware``).

The provider is our own ``TracerProvider``, never installed as the global one: a library must
not take over its application's tracing. Its batch processor reads ``OTEL_BSP_*``. All
``OTEL_*`` variables are read from the process environment, where the SDK looks for them.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.tracing.processor import DropCountingBatchSpanProcessor

__all__ = [
    "LANGFUSE_TRACES_PATH",
    "LangfuseTarget",
    "TraceMode",
    "build_exporter",
    "build_provider",
    "parse_trace_mode",
]

TraceMode = Literal["off", "langfuse", "otlp"]
LANGFUSE_TRACES_PATH: Final = "/api/public/otel/v1/traces"
DEFAULT_SERVICE_NAME: Final = "prompt-middleware"
_PROTOCOL_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_HTTP_PROTOBUF: Final = "http/protobuf"


@dataclass(frozen=True, slots=True)
class LangfuseTarget:
    """The Langfuse project spans go to in ``langfuse`` mode."""

    host: str
    public_key: str
    secret_key: str

    def __repr__(self) -> str:  # the secret key never shows
        return f"LangfuseTarget(host={self.host!r}, public_key={self.public_key!r})"


def parse_trace_mode(value: str) -> TraceMode:
    """``PROMPT_MIDDLEWARE_TRACES`` as a mode; a clear start-up error otherwise."""
    mode = value.strip().lower()
    for known in get_args(TraceMode):
        if mode == known:
            return known  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"PROMPT_MIDDLEWARE_TRACES={value!r} is not one of off, langfuse, otlp."
    )


def build_exporter(
    mode: Literal["langfuse", "otlp"],
    *,
    langfuse: LangfuseTarget | None,
    environ: Mapping[str, str] | None = None,
) -> SpanExporter:
    """The OTLP/HTTP exporter of a mode; raises :class:`ConfigurationError` when it cannot."""
    # Imported here: the exporter (protobuf, requests) takes longer to import than the rest of
    # prompt-middleware, and an application with traces off never needs it.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    _refuse_other_protocols(os.environ if environ is None else environ)
    if mode == "otlp":
        return OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_* itself
    if langfuse is None:
        raise ConfigurationError(
            "PROMPT_MIDDLEWARE_TRACES=langfuse needs the Langfuse keys: set "
            "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (and LANGFUSE_BASE_URL)."
        )
    credentials = f"{langfuse.public_key}:{langfuse.secret_key}".encode()
    return OTLPSpanExporter(
        endpoint=langfuse.host.rstrip("/") + LANGFUSE_TRACES_PATH,
        headers={"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")},
    )


def build_provider(exporter: SpanExporter) -> tuple[TracerProvider, DropCountingBatchSpanProcessor]:
    """A provider of our own, exporting through the batch processor it returns."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    # shutdown_on_exit=False: the owner shuts it down (bounded) on close; the SDK's atexit
    # hook would wait up to 30 s for a collector that hangs.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    processor = DropCountingBatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider, processor


def _refuse_other_protocols(environ: Mapping[str, str]) -> None:
    for name in _PROTOCOL_VARIABLES:  # the traces-specific variable first, as the SDK reads
        value = environ.get(name)
        if value is None:
            continue
        if value.strip().lower() != _HTTP_PROTOBUF:
            raise ConfigurationError(
                f"{name}={value!r}: prompt-middleware exports traces over OTLP/HTTP "
                f"(protobuf) only; set it to {_HTTP_PROTOBUF} or unset it."
            )
        return
