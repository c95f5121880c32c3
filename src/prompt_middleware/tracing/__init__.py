"""Traces: one OpenTelemetry span per request on a matched route, linked to its prompt version.

``Tracing`` owns the spans of one door and their export; ``GenerationSpan`` is one request's
span, and ``SpanRecord`` what it leaves once ended, encoded as OTLP on the export side;
``TracedStream`` (httpx2, httpx) shows a span the answer as it passes (the ASGI doors show
it through their :class:`~prompt_middleware.answer_watch.AnswerWatch`).
README, "Traces", describes the settings and every attribute.
"""

from prompt_middleware.tracing.answer import Answer, Usage
from prompt_middleware.tracing.asgi import content_type_of
from prompt_middleware.tracing.attributes import PromptLink
from prompt_middleware.tracing.batches import BatchSettings, SpanExporter
from prompt_middleware.tracing.context import TRACE_HEADERS, trace_context_of
from prompt_middleware.tracing.record import SpanRecord
from prompt_middleware.tracing.sampler import Sampler
from prompt_middleware.tracing.setup import LangfuseTarget, TraceMode, parse_trace_mode
from prompt_middleware.tracing.span import GenerationSpan
from prompt_middleware.tracing.stream import TracedStream
from prompt_middleware.tracing.tracer import Tracing

__all__ = [
    "TRACE_HEADERS",
    "Answer",
    "BatchSettings",
    "GenerationSpan",
    "LangfuseTarget",
    "PromptLink",
    "Sampler",
    "SpanExporter",
    "SpanRecord",
    "TraceMode",
    "TracedStream",
    "Tracing",
    "Usage",
    "content_type_of",
    "parse_trace_mode",
    "trace_context_of",
]
