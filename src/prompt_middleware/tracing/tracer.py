"""``Tracing``: the spans of one door (a middleware, a transport), and their way out.

Built once from the settings; with ``PROMPT_MIDDLEWARE_TRACES=off`` there is no ``Tracing``
at all, so a door's only cost is checking that it has none. With traces on, a request pays
for its ids, the sampler's decision and — only when sampled — its attributes and one
:class:`~prompt_middleware.tracing.record.SpanRecord`; encoding and sending happen in the
export thread (``batches``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterable, Mapping

import msgspec

from prompt_middleware.apis import CHAT, Api
from prompt_middleware.engine import RewriteResult
from prompt_middleware.errors import RequestError
from prompt_middleware.request import decode_body
from prompt_middleware.settings import Settings
from prompt_middleware.tracing.attributes import (
    Attributes,
    PromptLink,
    api_attributes,
    prompt_attributes,
    request_attributes,
    requested_prompt_attributes,
    span_name,
)
from prompt_middleware.tracing.batches import BatchExport, BatchSettings, SpanExporter
from prompt_middleware.tracing.context import parent_of, trace_context_of
from prompt_middleware.tracing.ids import new_span_id, new_trace_id
from prompt_middleware.tracing.link import arrival_ns, prompt_link
from prompt_middleware.tracing.sampler import Sampler, sampler_from_environ
from prompt_middleware.tracing.setup import (
    LangfuseTarget,
    TraceMode,
    build_exporter,
    parse_trace_mode,
)
from prompt_middleware.tracing.span import GenerationSpan

__all__ = ["Tracing"]


class Tracing:
    """Starts request spans and exports them in batches.

    ``exporter`` receives the batches (OTLP over HTTP in production; any
    :class:`~prompt_middleware.tracing.batches.SpanExporter` in tests and benchmarks).
    ``content`` records the messages sent and the answer's message
    (``PROMPT_MIDDLEWARE_TRACE_CONTENT``). The sampler (``OTEL_TRACES_SAMPLER``) and the
    batching (``OTEL_BSP_*``) are read from ``environ`` (default: the process environment)
    unless given.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        content: bool = True,
        sampler: Sampler | None = None,
        batches: BatchSettings | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._content = content
        self._sampler = sampler if sampler is not None else sampler_from_environ(env)
        self._batches = BatchExport(
            exporter, batches if batches is not None else BatchSettings.from_environ(env)
        )
        self._finish = self._batches.add
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
        exporter = build_exporter(mode, langfuse=langfuse, environ=environ)
        return cls(exporter, content=trace_content, environ=environ)

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
        return self._batches.dropped

    def _open(self, traceparent: str | None, tracestate: str | None) -> GenerationSpan:
        """A span with its ids and the sampler's decision, nothing recorded yet.

        A sampled span that starts while the export queue is full is dropped at once (and
        counted): it records nothing, so an export that cannot keep up — a collector that
        hangs — costs the requests what a span the sampler leaves out costs, not a span's
        work thrown away at its end. Its ``traceparent`` still says sampled.
        """
        parent = parent_of(traceparent, tracestate)
        if parent is None:
            trace_id = new_trace_id()
            sampled = self._sampler.sampled(trace_id, None)
        else:
            trace_id = parent.trace_id
            sampled = self._sampler.sampled(trace_id, parent.sampled)
        finish = None
        if sampled:
            finish = self._finish if self._batches.admit() else None
        return GenerationSpan(
            trace_id,
            new_span_id(),
            parent,
            finish=finish,
            content=self._content,
            sampled=sampled,
        )

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
        (``api``: the route's, README "Three APIs")."""
        span = self._open(traceparent, tracestate)
        if span.recording:
            model, attributes = self._request_attributes(fields, api)
            linked = None if prompt is None else prompt_attributes(prompt)
            span.record(span_name(model), attributes, start_ns, api.name, linked)
        return span

    def _request_attributes(
        self, fields: Mapping[str, msgspec.Raw], api: Api
    ) -> tuple[str | None, Attributes]:
        """The request's attributes; the user and the conversation in the API's own fields."""
        model, attributes = request_attributes(fields, content=self._content)
        if api is CHAT:
            attributes["gen_ai.provider.name"] = api.provider
        else:
            attributes.update(
                api_attributes(
                    fields,
                    provider=api.provider,
                    user=api.user_key(fields),
                    conversation=api.conversation,
                    content=self._content,
                )
            )
        return model, attributes

    def start_request(
        self,
        result: RewriteResult | None,
        body: bytes,
        *,
        started: float,
        headers: Iterable[tuple[bytes, bytes]] = (),
        api: Api = CHAT,
    ) -> GenerationSpan:
        """A door's span for a request rewritten to ``result`` (None: ``body`` went on as is).

        ``started`` is the door's ``time.perf_counter()`` at the request's arrival; ``headers``
        the request's raw pairs, whose ``traceparent``/``tracestate`` are read here, for both
        doors (names in any case). The sampler decides first, on the ids alone: a span it
        leaves out costs neither the body's decoding nor its attributes.
        """
        span = self._open(*trace_context_of(headers))
        if span.recording:
            fields = _fields(body if result is None else result.body)
            model, attributes = self._request_attributes(fields, api)
            link = None if result is None else prompt_link(result)
            linked = None if link is None else prompt_attributes(link)
            span.record(span_name(model), attributes, arrival_ns(started), api.name, linked)
        return span

    def record_error(
        self,
        error: RequestError,
        *,
        started: float,
        body: bytes | None = None,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """The span of a request we answered with ``error`` before sending it anywhere
        (``started``: the door's ``time.perf_counter()`` at its arrival; ``body``: the
        request's, when it was read, for what it said — model, user, prompt asked for)."""
        span = self._open(*trace_context_of(headers))
        if not span.recording:
            return
        fields = _fields(body) if body is not None else {}
        model, attributes = request_attributes(fields, content=False)
        attributes.update(requested_prompt_attributes(fields))
        span.record(span_name(model), attributes, arrival_ns(started))
        span.fail(error.code, error.message)
        span.end()

    def force_flush(self) -> bool:
        """Export every span ended so far, in the calling thread (tests; blocking)."""
        return self._batches.force_flush()

    async def aclose(self, timeout_seconds: float = 5.0) -> None:
        """Export what is queued and stop, waiting at most ``timeout_seconds``.

        The last export blocks (up to its timeout for a collector that hangs), so it runs in
        a daemon thread of its own: a stuck backend delays neither the event loop nor the
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
                self._batches.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(finished)

        threading.Thread(target=shut_down, name="prompt-middleware-traces", daemon=True).start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, timeout_seconds)


def _fields(body: bytes) -> Mapping[str, msgspec.Raw]:
    """The body's top level, or nothing when it is not a JSON object (a span never fails)."""
    try:
        return decode_body(body)
    except (RequestError, RecursionError):
        return {}
