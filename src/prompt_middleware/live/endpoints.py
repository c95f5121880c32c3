"""The two doors of an invalidation: ``POST /webhooks/langfuse`` and ``POST /cache/invalidate``.

Both apply the invalidation in this process before answering and hand it to the links
without waiting for them: Redis down or silent never delays the answer (Langfuse retries a
slow delivery). Both are idempotent: a repeated delivery invalidates again, harmlessly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec
from starlette.types import Receive, Scope, Send

from prompt_middleware.errors import InvalidRequest, RequestError, RequestTooLarge, send_error
from prompt_middleware.live.bus import InvalidationBus
from prompt_middleware.live.webhook import SIGNATURE_HEADER, WebhookVerifier, parse_event

__all__ = ["INVALIDATE_PATH", "WEBHOOK_PATH", "answer_invalidate", "answer_webhook"]

WEBHOOK_PATH: Final = "/webhooks/langfuse"
INVALIDATE_PATH: Final = "/cache/invalidate"
LANGFUSE_PREFIX: Final = "langfuse"
_JSON: Final = (b"content-type", b"application/json")


class _InvalidateFields(msgspec.Struct, forbid_unknown_fields=True):
    store: str | None = None
    prompt_id: str | None = None


class _Answer(msgspec.Struct, omit_defaults=True):
    status: str
    store: str | None = None
    prompt_id: str | None = None


_decode_invalidate: Final = msgspec.json.Decoder(_InvalidateFields).decode
_encode: Final = msgspec.json.Encoder().encode


async def answer_webhook(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    verifier: WebhookVerifier,
    bus: InvalidationBus,
    max_body_bytes: int,
) -> None:
    """Verify a Langfuse delivery, invalidate its prompt, answer 200 (or the error)."""
    try:
        body = await read_body(receive, max_body_bytes)
        verifier.verify(_header(scope, SIGNATURE_HEADER), body)
        event = parse_event(body)
    except RequestError as error:
        await send_error(send, error)
        return
    if not event.invalidates:
        await _ok(send, _Answer(status="ignored"))
        return
    bus.publish(LANGFUSE_PREFIX, event.prompt_name)
    await _ok(
        send, _Answer(status="invalidated", store=LANGFUSE_PREFIX, prompt_id=event.prompt_name)
    )


async def answer_invalidate(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    bus: InvalidationBus,
    store_prefix: Callable[[str], str],
    max_body_bytes: int,
) -> None:
    """Invalidate ``{"store", "prompt_id"}`` (either may be left out); answer 200.

    ``store_prefix`` turns the name a client gave (an alias such as ``dotprompt``) into the
    store's prefix, or raises :class:`InvalidRequest` for a store that does not exist.
    """
    try:
        body = await read_body(receive, max_body_bytes)
        fields = _decode_invalidate(body) if body.strip() else _InvalidateFields()
        store = None if fields.store is None else store_prefix(fields.store)
    except msgspec.ValidationError as exc:
        await send_error(send, InvalidRequest(f"The body is not an invalidation: {exc}."))
        return
    except msgspec.DecodeError:
        await send_error(send, InvalidRequest("The body is not JSON."))
        return
    except RequestError as error:
        await send_error(send, error)
        return
    bus.publish(store, fields.prompt_id)
    await _ok(send, _Answer(status="invalidated", store=store, prompt_id=fields.prompt_id))


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: what arrived is all there is
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(
                f"The body is larger than {limit} bytes (PROMPT_MIDDLEWARE_MAX_BODY_BYTES)."
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _ok(send: Send, answer: _Answer) -> None:
    body = _encode(answer)
    headers = [_JSON, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
