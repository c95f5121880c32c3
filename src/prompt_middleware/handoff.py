"""Where a request goes next: the one hand-off from the middleware to a forwarder.

The middleware knows which model-list entry a request used; the forwarder knows how to send
it. What passes between them is one :class:`HandOff`: the body to send, the entry's upstream
(None: the forwarder's default one), whether the request waited for a prompt store on its
way, the ``x-prompt-*`` headers to add to the response, with traces on the request's span
(the forwarder sends its ``traceparent`` upstream and marks it with its own errors), and the
request's answer watch, when it has one (the forwarder tells it when the upstream answered).

A forwarder that is a :class:`BodyForwarder` (the sidecar's) gets the record in one call: no
scope copy, no replayed ``receive``, no wrapped ``send``. An app behind other ASGI layers gets
the same record through plain ASGI: the body as the request's, the upstream, the waited
flag, the span and the watch under :data:`UPSTREAM_SCOPE_KEY`, :data:`WAITED_SCOPE_KEY`,
:data:`TRACE_SCOPE_KEY` and :data:`WATCH_SCOPE_KEY` (:func:`with_handoff`, :func:`with_trace`,
read back by :func:`handoff_from_scope`), the headers added to its response by the middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Final, Protocol, runtime_checkable

import msgspec
from starlette.types import Receive, Scope, Send

from prompt_middleware.answer_watch import AnswerWatch
from prompt_middleware.settings import ModelEntry, Secret
from prompt_middleware.tracing.context import TRACE_HEADERS
from prompt_middleware.tracing.span import GenerationSpan

__all__ = [
    "BODY_HEADERS",
    "TRACE_SCOPE_KEY",
    "UPSTREAM_SCOPE_KEY",
    "WAITED_SCOPE_KEY",
    "WATCH_SCOPE_KEY",
    "BodyForwarder",
    "HandOff",
    "Upstream",
    "handoff_from_scope",
    "upstream_of",
    "upstream_path",
    "with_handoff",
    "with_trace",
]

UPSTREAM_SCOPE_KEY: Final = "prompt_middleware.handoff"
WAITED_SCOPE_KEY: Final = "prompt_middleware.waited"
TRACE_SCOPE_KEY: Final = "prompt_middleware.trace"
WATCH_SCOPE_KEY: Final = "prompt_middleware.watch"
#: Headers that describe the body: replaced when the body is.
BODY_HEADERS: Final = frozenset({b"content-length", b"transfer-encoding"})
_TRACE_HEADERS: Final = frozenset(name.encode("ascii") for name in TRACE_HEADERS)
_BODY_AND_TRACE_HEADERS: Final = BODY_HEADERS | _TRACE_HEADERS


class Upstream(msgspec.Struct, frozen=True):
    """An OpenAI-style base URL (``https://api.openai.com/v1``) and the key to send it."""

    base_url: str
    api_key: Secret | None = None


class HandOff(msgspec.Struct, frozen=True, gc=False):
    """A request on its way to the upstream, as the middleware passes it on.

    ``waited``: the client may have left while its prompt was fetched, so the forwarder looks
    before it calls the upstream. ``trace``: the request's span, with traces on. ``watch``:
    the request's answer watch, when it has one.
    """

    body: bytes
    upstream: Upstream | None = None
    waited: bool = False
    response_headers: Sequence[tuple[bytes, bytes]] = ()
    trace: GenerationSpan | None = None
    watch: AnswerWatch | None = None


@runtime_checkable
class BodyForwarder(Protocol):
    """An ASGI app that also takes a request whose body the middleware has already read."""

    def forward_body(
        self, scope: Scope, handoff: HandOff, receive: Receive, send: Send
    ) -> Awaitable[int]:
        """Send ``handoff.body`` on as the request's whole body and answer the client with
        ``handoff.response_headers`` added to the response's own.

        ``scope`` is the request's: its ``content-length`` and body-related headers are not
        used. ``receive`` is read only to notice the client leaving. Awaited, the response's
        status (0 when the client left before there was one).
        """
        ...


def with_handoff(scope: Scope, handoff: HandOff) -> Scope:
    """``scope`` for a plain ASGI app: the new body's length, the upstream and waited keys,
    and with a span what :func:`with_trace` adds (one copy of the scope for both)."""
    span = handoff.trace
    dropped = BODY_HEADERS if span is None else _BODY_AND_TRACE_HEADERS
    headers = [(k, v) for k, v in scope["headers"] if k not in dropped]
    headers.append((b"content-length", b"%d" % len(handoff.body)))
    rewritten = {**scope, "headers": headers}
    if span is not None:
        headers += span.trace_header_items()
        rewritten[TRACE_SCOPE_KEY] = span
    if handoff.upstream is not None:
        rewritten[UPSTREAM_SCOPE_KEY] = handoff.upstream
    if handoff.waited:
        rewritten[WAITED_SCOPE_KEY] = True
    if handoff.watch is not None:
        rewritten[WATCH_SCOPE_KEY] = handoff.watch
    return rewritten


def with_trace(scope: Scope, span: GenerationSpan) -> Scope:
    """``scope`` with the span under :data:`TRACE_SCOPE_KEY` and its ``traceparent`` (and
    ``tracestate``) in place of the caller's: what the app calls next is the span's child."""
    headers = [(k, v) for k, v in scope["headers"] if k not in _TRACE_HEADERS]
    headers += span.trace_header_items()
    return {**scope, "headers": headers, TRACE_SCOPE_KEY: span}


def handoff_from_scope(scope: Scope, body: bytes) -> HandOff:
    """The hand-off a plain ASGI request carries (no keys: the default upstream)."""
    return HandOff(
        body,
        scope.get(UPSTREAM_SCOPE_KEY),
        bool(scope.get(WAITED_SCOPE_KEY)),
        trace=scope.get(TRACE_SCOPE_KEY),
        watch=scope.get(WATCH_SCOPE_KEY),
    )


def upstream_of(entry: ModelEntry | None) -> Upstream | None:
    """The upstream a model-list entry names, if it names one."""
    if entry is None or entry.api_base is None:
        return None
    return Upstream(base_url=entry.api_base, api_key=entry.api_key)


def upstream_path(path: str) -> str:
    """The path under the upstream's base URL (README, "The sidecar"): ``/v1/<path>`` and
    ``/<path>`` both go to the base URL, which already ends in ``/v1``, + ``/<path>``."""
    if path == "/v1" or path.startswith("/v1/"):
        return path[3:]
    return path
