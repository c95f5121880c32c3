"""``Tracing``: the spans of one door (a middleware, a transport), and their way out.

Built once from the settings; with ``PROMPT_MIDDLEWARE_TRACES=off`` there is no ``Tracing``
at all, so a door's only cost is checking that it has none.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from typing import Final

import msgspec
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from prompt_middleware.apis import CHAT, Api
from prompt_middleware.engine import RewriteResult
from prompt_middleware.request import decode_body
from prompt_middleware.settings import Settings
from prompt_middleware.tracing.attributes import (
    OPERATION,
    Attributes,
    PromptLink,
    api_attributes,
    prompt_attributes,
    request_attributes,
    span_name,
)
from prompt_middleware.tracing.context import parent_context
from prompt_middleware.tracing.link import arrival_ns, prompt_link
from prompt_middleware.tracing.processor import DropCountingBatchSpanProcessor
from prompt_middleware.tracing.setup import (
    LangfuseTarget,
    TraceMode,
    build_exporter,
    build_provider,
    parse_trace_mode,
)
from prompt_middleware.tracing.span import GenerationSpan

__all__ = ["Tracing"]

INSTRUMENTATION_NAME: Final = "prompt_middleware"
_ERROR: Final = Status(StatusCode.ERROR)


class Tracing:
    """Starts request spans on a ``TracerProvider`` of its own and exports them in batches.

    ``exporter`` receives the batches (an ``OTLPSpanExporter`` in production; any SDK
    ``SpanExporter`` in tests and benchmarks). ``content`` records the messages sent and the
    answer's message (``PROMPT_MIDDLEWARE_TRACE_CONTENT``).
    """

    def __init__(self, exporter: SpanExporter, *, content: bool = True) -> None:
        self._content = content
        provider, processor = build_provider(exporter)
        self._provider: TracerProvider = provider
        self._processor: DropCountingBatchSpanProcessor = processor
        self._tracer = provider.get_tracer(INSTRUMENTATION_NAME)
        self._closed = False

    @classmethod
    def from_values(
        cls,
        traces: str,
        *,
        trace_content: bool = True,
        langfuse: LangfuseTarget | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Tracing | None:
        """The tracing of ``PROMPT_MIDDLEWARE_TRACES``; None when it is ``off``."""
        mode: TraceMode = parse_trace_mode(traces)
        if mode == "off":
            return None
        return cls(build_exporter(mode, langfuse=langfuse, environ=environ), content=trace_content)

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracing | None:
        """The tracing ``settings`` ask for (``traces``, ``trace_content``, the Langfuse keys
        and host for ``langfuse``); None when traces are off."""
        if settings.traces == "off":
            return None
        langfuse = None
        if settings.langfuse_public_key is not None and settings.langfuse_secret_key is not None:
            langfuse = LangfuseTarget(
                host=settings.langfuse_base_url,
                public_key=settings.langfuse_public_key,
                secret_key=settings.langfuse_secret_key.get_secret_value(),
            )
        return cls.from_values(
            settings.traces, trace_content=settings.trace_content, langfuse=langfuse
        )

    @property
    def content(self) -> bool:
        return self._content

    @property
    def dropped_spans(self) -> int:
        """Spans lost so far because the export queue was full."""
        return self._processor.dropped

    def start(
        self,
        fields: Mapping[str, msgspec.Raw],
        *,
        prompt: PromptLink | None,
        start_ns: int,
        traceparent: str | None = None,
        tracestate: str | None = None,
        api: Api = CHAT,
    ) -> GenerationSpan:
        """The span of a request whose body sent on is ``fields``, started at ``start_ns``
        (``api``: the route's, README "Three APIs").

        The attributes are set once the span exists, so that a span the sampler leaves out
        (``OTEL_TRACES_SAMPLER``) costs neither them nor reading the answer; a sampler
        therefore decides without them.
        """
        model, attributes = request_attributes(fields, content=self._content)
        span = self._tracer.start_span(
            span_name(model),
            context=parent_context(traceparent, tracestate),
            kind=SpanKind.CLIENT,
            start_time=start_ns,
        )
        if span.is_recording():
            if api is CHAT:
                attributes["gen_ai.provider.name"] = api.provider
            else:  # the user and the conversation live in the API's own fields
                attributes.update(
                    api_attributes(
                        fields,
                        provider=api.provider,
                        user=api.user_key(fields),
                        conversation=api.conversation,
                        content=self._content,
                    )
                )
            if prompt is not None:
                attributes.update(prompt_attributes(prompt))
            span.set_attributes(attributes)
        return GenerationSpan(span, content=self._content, api=api.name)

    def start_request(
        self,
        result: RewriteResult | None,
        body: bytes,
        *,
        started: float,
        traceparent: str | None = None,
        tracestate: str | None = None,
        api: Api = CHAT,
    ) -> GenerationSpan:
        """A door's span for a request rewritten to ``result`` (None: ``body`` went on as is).

        ``started`` is the door's ``time.perf_counter()`` at the request's arrival: the span
        starts then, without the door reading the wall clock on every request.
        """
        sent = body if result is None else result.body
        return self.start(
            decode_body(sent),
            prompt=None if result is None else prompt_link(result),
            start_ns=arrival_ns(started),
            traceparent=traceparent,
            tracestate=tracestate,
            api=api,
        )

    def record_error(
        self,
        error_type: str,
        *,
        started: float,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> None:
        """The span of a request we answered with an error before sending it anywhere
        (``started``: the door's ``time.perf_counter()`` at its arrival)."""
        attributes: Attributes = {"gen_ai.operation.name": OPERATION, "error.type": error_type}
        span = self._tracer.start_span(
            span_name(None),
            context=parent_context(traceparent, tracestate),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=arrival_ns(started),
        )
        span.set_status(_ERROR)
        span.end()

    def force_flush(self) -> bool:
        """Export every span ended so far, in the calling thread (tests; blocking)."""
        return self._provider.force_flush()

    async def aclose(self, timeout_seconds: float = 5.0) -> None:
        """Export what is queued and stop, waiting at most ``timeout_seconds``.

        The SDK's shutdown blocks (up to 30 s for a collector that hangs), so it runs in a
        daemon thread of its own: a stuck backend delays neither the event loop nor the
        process's exit.
        """
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        def shut_down() -> None:
            try:
                self._provider.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(finished)

        threading.Thread(target=shut_down, name="prompt-middleware-traces", daemon=True).start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, timeout_seconds)
