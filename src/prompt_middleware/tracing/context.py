"""W3C trace context: the caller's ``traceparent`` in, the span's ``traceparent`` out.

Parsed here by the rules OpenTelemetry's ``TraceContextTextMapPropagator`` applies (the same
header is refused, the same ``tracestate`` kept), without building its context objects on
every request.

**Which parent.** In a host application that traces with OpenTelemetry itself (the
middleware, or the transport inside its handlers), the host's current span is the parent: a
host that traces has read the caller's ``traceparent`` already (its span is the caller's
child), or has chosen to start a trace of its own, and our span belongs in the host's trace
where it runs. Without an open host span, a valid incoming ``traceparent`` is the parent;
without either, the span starts a trace. The host's span is read through
``opentelemetry-api``, only when that is installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["TRACE_HEADERS", "Parent", "parent_of", "trace_context_of", "traceparent_of"]

#: The request headers that carry trace context: replaced by the span's own when sent on.
TRACE_HEADERS: Final = frozenset({"traceparent", "tracestate"})
_TRACEPARENT: Final = b"traceparent"
_TRACESTATE: Final = b"tracestate"
_TRACEPARENT_LENGTH: Final = len(_TRACEPARENT)
_TRACESTATE_LENGTH: Final = len(_TRACESTATE)

_TRACEPARENT_FORMAT: Final = re.compile(
    r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)"
)
_MAX_TRACEPARENT: Final = 512
_MAX_TRACESTATE: Final = 8192
_MAX_TRACESTATE_MEMBERS: Final = 32
_KEY: Final = (
    r"[a-z][_0-9a-z\-\*\/]{0,255}|[a-z0-9][_0-9a-z\-\*\/]{0,240}@[a-z][_0-9a-z\-\*\/]{0,13}"
)
_VALUE: Final = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_MEMBER: Final = re.compile(f"({_KEY})=({_VALUE})")


@dataclass(frozen=True, slots=True)
class Parent:
    """The span a request's span continues: its trace, its id, whether it was sampled, its
    ``tracestate`` (normalised) and whether it came from another process."""

    trace_id: int
    span_id: int
    sampled: bool
    trace_state: str
    remote: bool


def trace_context_of(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The ``traceparent`` and ``tracestate`` of raw request headers, the first of each.

    The one reader of both doors: names are compared case-insensitively, since httpx keeps
    a header's name as the client wrote it (``Traceparent``) where ASGI lower-cases it.
    """
    traceparent = tracestate = None
    for name, value in headers:
        if len(name) == _TRACEPARENT_LENGTH:
            if traceparent is None and name.lower() == _TRACEPARENT:
                traceparent = value.decode("latin-1")
        elif len(name) == _TRACESTATE_LENGTH and tracestate is None and name.lower() == _TRACESTATE:
            tracestate = value.decode("latin-1")
    return traceparent, tracestate


def parent_of(traceparent: str | None, tracestate: str | None = None) -> Parent | None:
    """The parent of a request's span (see the module's docstring); None for a root span."""
    host = _host_parent()
    if host is not None:
        return host
    if traceparent is None:
        return None
    return _remote_parent(traceparent, tracestate)


def traceparent_of(trace_id: int, span_id: int, sampled: bool) -> str:
    """The W3C ``traceparent`` of a span."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def _remote_parent(traceparent: str, tracestate: str | None) -> Parent | None:
    if len(traceparent) > _MAX_TRACEPARENT:
        return None
    match = _TRACEPARENT_FORMAT.fullmatch(traceparent)
    if match is None:
        return None
    version, trace_hex, span_hex, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return Parent(trace_id, span_id, bool(int(flags, 16) & 1), _trace_state(tracestate), True)


def _trace_state(header: str | None) -> str:
    """``tracestate`` as OpenTelemetry keeps it: members stripped, empty ones left out; the
    whole of it dropped when a member is malformed or repeated, or when it is too long."""
    if not header or len(header) > _MAX_TRACESTATE:
        return ""
    keys: set[str] = set()
    members: list[str] = []
    for member in header.split(","):
        member = member.strip(" \t")
        if not member:
            continue
        match = _MEMBER.fullmatch(member)
        if match is None or match.group(1) in keys:
            return ""
        keys.add(match.group(1))
        members.append(member)
    if len(members) > _MAX_TRACESTATE_MEMBERS:
        return ""
    return ",".join(members)


def _find_host_span() -> Callable[[], Parent | None]:
    """The reader of the host application's open span: through ``opentelemetry-api`` when
    it is installed (imported once, here), else one that always answers None."""
    try:
        from opentelemetry.context import get_current
        from opentelemetry.trace import get_current_span
    except ImportError:  # the host does not trace with OpenTelemetry
        return lambda: None

    def host_parent() -> Parent | None:
        if not get_current():  # the usual case: no OpenTelemetry context at all
            return None
        context = get_current_span().get_span_context()
        if not context.is_valid:
            return None
        state = context.trace_state
        return Parent(
            context.trace_id,
            context.span_id,
            context.trace_flags.sampled,
            ",".join(f"{key}={value}" for key, value in state.items()) if state else "",
            context.is_remote,
        )

    return host_parent


_host_parent: Final = _find_host_span()
