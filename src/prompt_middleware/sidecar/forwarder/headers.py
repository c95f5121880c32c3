"""Which headers cross the forwarder: everything but what is meant for one hop only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["anthropic_request_headers", "request_headers", "response_headers"]

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded ("trailers" is the
# value of TE, but old proxies send it as a header name, so drop that too).
_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Also never copied from the client: aiohttp writes host and content-length for the upstream,
# and our server has already answered any "Expect: 100-continue".
_DROP_REQUEST: Final = _HOP_BY_HOP | {b"host", b"content-length", b"expect"}
_DROP_REQUEST_AUTH: Final = _DROP_REQUEST | {b"authorization"}
# With traces on, the request's span replaces the caller's trace context.
_TRACE: Final = frozenset({b"traceparent", b"tracestate"})
_DROP_REQUEST_TRACE: Final = _DROP_REQUEST | _TRACE
_DROP_REQUEST_AUTH_TRACE: Final = _DROP_REQUEST_AUTH | _TRACE


def request_headers(
    raw: Iterable[tuple[bytes, bytes]],
    authorization: str | None,
    *,
    keep_length: bool,
    trace: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The client's headers as the upstream gets them; ``authorization`` replaces the client's,
    and ``trace`` (the span's ``traceparent`` and ``tracestate``) the client's trace context."""
    if trace is None:
        drop = _DROP_REQUEST if authorization is None else _DROP_REQUEST_AUTH
    else:
        drop = _DROP_REQUEST_TRACE if authorization is None else _DROP_REQUEST_AUTH_TRACE
    headers: list[tuple[str, str]] = []
    connection: bytes | None = None
    for name, value in raw:
        if name in drop:
            if name == b"connection":
                connection = value
            elif name == b"content-length" and keep_length:
                # A body sent on as it arrives keeps its declared length (else: chunked).
                headers.append(("content-length", value.decode("latin-1")))
            continue
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    if connection is not None:
        named = _connection_tokens(connection)
        if named:
            headers = [(k, v) for k, v in headers if k.encode("latin-1") not in named]
    if authorization is not None:
        headers.append(("authorization", authorization))
    if trace is not None:
        headers += trace.items()
    return headers


_ANTHROPIC_CREDENTIALS: Final = frozenset({b"authorization", b"x-api-key"})
_BEARER: Final = b"bearer "


def anthropic_request_headers(
    raw: Iterable[tuple[bytes, bytes]],
    api_key: str | None,
    *,
    keep_length: bool,
    trace: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """:func:`request_headers` for an Anthropic upstream: exactly one credential, as
    ``x-api-key`` — ``api_key``, else the client's (``x-api-key``, or ``Authorization:
    Bearer``, which today's Anthropic SDK sends)."""
    raw = list(raw)
    if api_key is None:
        api_key = _client_key(raw)
    kept = [(name, value) for name, value in raw if name not in _ANTHROPIC_CREDENTIALS]
    headers = request_headers(kept, None, keep_length=keep_length, trace=trace)
    if api_key is not None:
        headers.append(("x-api-key", api_key))
    return headers


def _client_key(raw: list[tuple[bytes, bytes]]) -> str | None:
    bearer = None
    for name, value in raw:
        if name == b"x-api-key" and value:
            return value.decode("latin-1")
        if name == b"authorization" and value[: len(_BEARER)].lower() == _BEARER:
            bearer = value[len(_BEARER) :].strip().decode("latin-1") or None
    return bearer


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's headers as the client gets them (names lowered, as ASGI wants)."""
    headers: list[tuple[bytes, bytes]] = []
    connection: bytes | None = None
    for name, value in raw:
        lowered = name.lower()
        if lowered in _HOP_BY_HOP:
            if lowered == b"connection":
                connection = value
            continue
        headers.append((lowered, value))
    if connection is not None:
        named = _connection_tokens(connection)
        if named:
            headers = [(k, v) for k, v in headers if k not in named]
    return headers


def _connection_tokens(value: bytes) -> frozenset[bytes]:
    # "Connection: keep-alive, X-Private" names headers for this hop only (RFC 9110 §7.6.1).
    tokens = {token.strip().lower() for token in value.split(b",")}
    return frozenset(tokens - _HOP_BY_HOP - {b""})
