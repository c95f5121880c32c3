"""Where spans go: the exporter for ``PROMPT_MIDDLEWARE_TRACES``, read once at start-up.

* ``langfuse`` — OTLP/HTTP to ``{Langfuse host}/api/public/otel/v1/traces``, Basic auth with
  the Langfuse keys (Langfuse's OpenTelemetry endpoint).
* ``otlp`` — any OpenTelemetry backend, configured by the standard variables:
  ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, ``_HEADERS``, ``_TIMEOUT`` (seconds, as
  OpenTelemetry's Python exporters read it), ``_COMPRESSION`` (``gzip``, ``deflate``,
  ``none``), ``_PROTOCOL`` (``http/json``, the default, or ``http/protobuf``),
  ``_CERTIFICATE``, ``_CLIENT_CERTIFICATE``, ``_CLIENT_KEY``; the traces-specific variable
  wins. ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` describe the service (default
  name ``prompt-middleware``); both modes read them, and the protocol and compression.

Every ``OTEL_*`` variable is read from the process environment (or the ``environ`` given),
once: a value we cannot honour stops start-up with the variable's name.
"""

from __future__ import annotations

import base64
import os
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Final, Literal, Protocol, get_args

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.tracing.otlp_http import OtlpHttpSender
from prompt_middleware.tracing.otlp_json import JsonEncoder
from prompt_middleware.tracing.record import AttributeValue, SpanRecord

__all__ = [
    "INSTRUMENTATION_NAME",
    "LANGFUSE_TRACES_PATH",
    "LangfuseTarget",
    "OtlpExporter",
    "TraceMode",
    "build_exporter",
    "parse_trace_mode",
    "resource_of",
]

TraceMode = Literal["off", "langfuse", "otlp"]
LANGFUSE_TRACES_PATH: Final = "/api/public/otel/v1/traces"
DEFAULT_SERVICE_NAME: Final = "prompt-middleware"
INSTRUMENTATION_NAME: Final = "prompt_middleware"
_DEFAULT_ENDPOINT: Final = "http://localhost:4318"
_TRACES_PATH: Final = "/v1/traces"
_DEFAULT_TIMEOUT_SECONDS: Final = 10.0
_PROTOCOLS: Final = ("http/json", "http/protobuf")
_COMPRESSIONS: Final = ("gzip", "deflate", "none")


@dataclass(frozen=True, slots=True)
class LangfuseTarget:
    """The Langfuse project spans go to in ``langfuse`` mode."""

    host: str
    public_key: str
    secret_key: str

    def __repr__(self) -> str:  # the secret key never shows
        return f"LangfuseTarget(host={self.host!r}, public_key={self.public_key!r})"


class _Encoder(Protocol):
    content_type: str

    def encode(self, records: Sequence[SpanRecord]) -> bytes | bytearray: ...


class OtlpExporter:
    """Encodes a batch (JSON or protobuf) and sends it; runs in the export thread."""

    def __init__(self, encoder: _Encoder, sender: OtlpHttpSender) -> None:
        self._encoder = encoder
        self._sender = sender

    def export(self, spans: Sequence[SpanRecord], timeout_seconds: float) -> bool:
        return self._sender.send(self._encoder.encode(spans), timeout_seconds)

    def shutdown(self) -> None:
        self._sender.stop()


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
) -> OtlpExporter:
    """The OTLP/HTTP exporter of a mode; raises :class:`ConfigurationError` when it cannot."""
    env = os.environ if environ is None else environ
    protocol = _choice(env, "PROTOCOL", _PROTOCOLS, "http/json")
    compression = _choice(env, "COMPRESSION", _COMPRESSIONS, "none")
    resource = resource_of(env)
    if protocol == "http/protobuf":
        from prompt_middleware.tracing.otlp_protobuf import ProtobufEncoder

        encoder: _Encoder = ProtobufEncoder(resource, INSTRUMENTATION_NAME, _package_version())
    else:
        encoder = JsonEncoder(resource, INSTRUMENTATION_NAME, _package_version())
    if mode == "otlp":
        endpoint = _variable(env, "ENDPOINT")
        if endpoint is None:
            endpoint = _DEFAULT_ENDPOINT + _TRACES_PATH
        elif not env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            endpoint = endpoint.rstrip("/") + _TRACES_PATH  # the generic one is a base URL
        headers = _headers(_variable(env, "HEADERS") or "")
    elif langfuse is None:
        raise ConfigurationError(
            "PROMPT_MIDDLEWARE_TRACES=langfuse needs the Langfuse keys: set "
            "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (and LANGFUSE_BASE_URL)."
        )
    else:
        endpoint = langfuse.host.rstrip("/") + LANGFUSE_TRACES_PATH
        credentials = f"{langfuse.public_key}:{langfuse.secret_key}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")}
    if not endpoint.lower().startswith(("http://", "https://")):
        raise ConfigurationError(
            f"The traces endpoint {endpoint!r} is not an http:// or https:// URL "
            "(OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, or LANGFUSE_BASE_URL)."
        )
    sender = OtlpHttpSender(
        endpoint,
        content_type=encoder.content_type,
        headers=headers,
        timeout_seconds=_timeout(env),
        compression=None if compression == "none" else compression,
        ssl_context=_ssl_context(env),
    )
    return OtlpExporter(encoder, sender)


def resource_of(environ: Mapping[str, str]) -> dict[str, AttributeValue]:
    """The resource every span describes: ``OTEL_RESOURCE_ATTRIBUTES``, then
    ``OTEL_SERVICE_NAME`` (which wins), then ``prompt-middleware`` as the service name."""
    resource: dict[str, AttributeValue] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": INSTRUMENTATION_NAME,
        "telemetry.sdk.version": _package_version(),
    }
    resource.update(_pairs(environ.get("OTEL_RESOURCE_ATTRIBUTES", "")))
    service = environ.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        resource["service.name"] = service
    resource.setdefault("service.name", DEFAULT_SERVICE_NAME)
    return resource


def _variable(environ: Mapping[str, str], suffix: str) -> str | None:
    """``OTEL_EXPORTER_OTLP_TRACES_<suffix>``, else ``OTEL_EXPORTER_OTLP_<suffix>``."""
    for name in (f"OTEL_EXPORTER_OTLP_TRACES_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}"):
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def _choice(environ: Mapping[str, str], suffix: str, allowed: tuple[str, ...], default: str) -> str:
    for name in (f"OTEL_EXPORTER_OTLP_TRACES_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}"):
        value = environ.get(name, "").strip()
        if not value:
            continue
        if value.lower() not in allowed:
            raise ConfigurationError(
                f"{name}={value!r}: prompt-middleware exports traces over OTLP/HTTP; set it "
                f"to one of {', '.join(allowed)} or unset it."
            )
        return value.lower()
    return default


def _timeout(environ: Mapping[str, str]) -> float:
    value = _variable(environ, "TIMEOUT")
    if value is None:
        return _DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT={value!r} is not a positive number of seconds."
        )
    return seconds


def _headers(value: str) -> dict[str, str]:
    """``key=value,…`` (URL-encoded), as OpenTelemetry reads ``OTEL_EXPORTER_OTLP_HEADERS``."""
    return {key.lower(): item for key, item in _pairs(value).items()}


def _pairs(value: str) -> dict[str, str]:
    pairs = {}
    for member in value.split(","):
        key, equals, item = member.partition("=")
        key = urllib.parse.unquote(key).strip()
        if equals and key:  # OpenTelemetry skips a malformed member and keeps the rest
            pairs[key] = urllib.parse.unquote(item).strip()
    return pairs


def _ssl_context(environ: Mapping[str, str]) -> ssl.SSLContext | None:
    certificate = _variable(environ, "CERTIFICATE")
    client_certificate = _variable(environ, "CLIENT_CERTIFICATE")
    if certificate is None and client_certificate is None:
        return None
    context = ssl.create_default_context(cafile=certificate)
    if client_certificate is not None:
        context.load_cert_chain(client_certificate, _variable(environ, "CLIENT_KEY"))
    return context


def _package_version() -> str:
    try:
        return version("prompt-middleware")
    except PackageNotFoundError:  # run from a source tree
        return "0"
