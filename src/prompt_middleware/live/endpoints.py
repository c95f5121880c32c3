"""The two doors of an invalidation: ``POST /webhooks/langfuse`` and ``POST /cache/invalidate``.

Both apply the invalidation in this process before answering and hand it to the links
without waiting for them: Redis down or silent never delays the answer (Langfuse retries a
slow delivery). Both are idempotent: a repeated delivery invalidates again, harmlessly.

The webhook is open (its signature is the credential), so it reads as little as it can: the
signature header's shape and ``t`` first (a 401 before any of the body is read), then at most
1 MiB of body (a 413 as soon as it passes), then the HMAC over it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec
from starlette.types import Receive, Scope, Send

from prompt_middleware.asgi import send_response
from prompt_middleware.body import read_body
from prompt_middleware.errors import InvalidRequest, RequestError, send_error
from prompt_middleware.live.bus import InvalidationBus
from prompt_middleware.live.webhook import (
    MAX_WEBHOOK_BYTES,
    SIGNATURE_HEADER,
    WebhookVerifier,
    parse_event,
)

__all__ = ["INVALIDATE_PATH", "WEBHOOK_PATH", "answer_invalidate", "answer_webhook"]

WEBHOOK_PATH: Final = "/webhooks/langfuse"
INVALIDATE_PATH: Final = "/cache/invalidate"
LANGFUSE_PREFIX: Final = "langfuse"
_WEBHOOK_CAP: Final = "the most a Langfuse webhook delivery may carry"


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
    scope: Scope, receive: Receive, send: Send, *, verifier: WebhookVerifier, bus: InvalidationBus
) -> None:
    """Verify a Langfuse delivery, invalidate its prompt, answer 200 (or the error)."""
    try:
        signature = verifier.check_header(_header(scope, SIGNATURE_HEADER))
        body = await read_body(
            receive,
            MAX_WEBHOOK_BYTES,
            declared_size=_header(scope, b"content-length"),
            cap=_WEBHOOK_CAP,
        )
        if body is None:
            return  # the client went away
        verifier.check_body(signature, body)
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
        body = await read_body(
            receive, max_body_bytes, declared_size=_header(scope, b"content-length")
        )
        if body is None:
            return  # the client went away
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


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _ok(send: Send, answer: _Answer) -> None:
    await send_response(send, 200, _encode(answer))
