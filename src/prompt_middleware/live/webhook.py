"""Langfuse's prompt-version webhooks: the signature check and the event.

Langfuse signs every delivery with ``x-langfuse-signature: t=<unix seconds>,v1=<hex>``: the
hex HMAC-SHA256 of ``"<t>.<raw body>"``, keyed with the secret exactly as Langfuse shows it
(``lf-whsec_…``) taken as UTF-8 bytes. A retried delivery carries the same header, so an
identical delivery is accepted again for as long as its ``t`` is within the window.

The header is checked before the body is read (:meth:`WebhookVerifier.check_header`): a
delivery without a well-formed, recent signature is refused before any of its body arrives.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import msgspec

from prompt_middleware.errors import InvalidRequest, InvalidSignature

__all__ = [
    "MAX_WEBHOOK_BYTES",
    "SIGNATURE_HEADER",
    "Signature",
    "WebhookEvent",
    "WebhookVerifier",
    "parse_event",
    "signature_header",
]

SIGNATURE_HEADER: Final = b"x-langfuse-signature"
PROMPT_VERSION: Final = "prompt-version"
_TOLERANCE_SECONDS: Final = 300.0
# A real unix time has 10 digits; a longer "t" is not worth converting.
_MAX_TIMESTAMP_DIGITS: Final = 12
#: The largest delivery read: a prompt-version event is a few kilobytes.
MAX_WEBHOOK_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Signature:
    """A well-formed, recent ``x-langfuse-signature``: its ``t`` and every ``v1`` offered."""

    timestamp: str
    offered: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """What a delivery asks for: its ``type``, and the prompt's name for a prompt event."""

    type: str
    prompt_name: str | None

    @property
    def invalidates(self) -> bool:
        """True for a prompt-version event (created, updated or deleted)."""
        return self.type == PROMPT_VERSION and self.prompt_name is not None


class WebhookVerifier:
    """Checks deliveries against one secret; the clock is injected for tests."""

    def __init__(
        self,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
        tolerance_seconds: float = _TOLERANCE_SECONDS,
    ) -> None:
        self._key = secret.encode()
        self._clock = clock
        self._tolerance = tolerance_seconds

    def verify(self, header: bytes | None, body: bytes) -> None:
        """Return if ``header`` signs ``body``; raise :class:`InvalidSignature` otherwise."""
        self.check_body(self.check_header(header), body)

    def check_header(self, header: bytes | None) -> Signature:
        """The signature ``header`` offers, if it is well formed and its ``t`` within 300 s
        of now; :class:`InvalidSignature` otherwise. Needs none of the body."""
        if header is None:
            raise InvalidSignature(
                "The request has no x-langfuse-signature header: only Langfuse's signed "
                "webhooks are accepted here."
            )
        signature = _parse_header(header)
        if abs(self._clock() - int(signature.timestamp)) > self._tolerance:
            raise InvalidSignature(
                "The x-langfuse-signature timestamp is more than 300 s from now: the delivery "
                "is too old (or a clock is wrong)."
            )
        return signature

    def check_body(self, signature: Signature, body: bytes) -> None:
        """Return if ``signature`` signs ``body``; raise :class:`InvalidSignature` otherwise."""
        expected = _digest(self._key, signature.timestamp, body).encode()
        # Compare with every offered signature, always: the time taken tells nothing.
        matches = [hmac.compare_digest(expected, offered) for offered in signature.offered]
        if not any(matches):
            raise InvalidSignature(
                "The x-langfuse-signature does not match the body: check "
                "PROMPT_MIDDLEWARE_LANGFUSE_WEBHOOK_SECRET against the secret Langfuse shows."
            )


def signature_header(secret: str, body: bytes, timestamp: int) -> bytes:
    """The header Langfuse would send with ``body`` at ``timestamp``: for tests and tools."""
    return f"t={timestamp},v1={_digest(secret.encode(), str(timestamp), body)}".encode()


class _PromptFields(msgspec.Struct):
    name: str


class _EventFields(msgspec.Struct):
    type: str
    # Decoded only for a prompt-version event: other events may carry anything here.
    prompt: msgspec.Raw = msgspec.Raw(b"null")


_decode_event: Final = msgspec.json.Decoder(_EventFields).decode
_decode_prompt: Final = msgspec.json.Decoder(_PromptFields).decode


def parse_event(body: bytes) -> WebhookEvent:
    """The event of a (verified) delivery; only ``type`` and ``prompt.name`` are read.

    Raises :class:`InvalidRequest` when the body is not such an event.
    """
    try:
        event = _decode_event(body)
        if event.type != PROMPT_VERSION:
            return WebhookEvent(type=event.type, prompt_name=None)
        if bytes(event.prompt) == b"null":
            raise InvalidRequest("A prompt-version event must carry 'prompt'.", param="prompt")
        name = _decode_prompt(event.prompt).name
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"The webhook body is not a Langfuse event: {exc}.") from None
    except msgspec.DecodeError:
        raise InvalidRequest("The webhook body is not JSON.") from None
    return WebhookEvent(type=event.type, prompt_name=name)


def _parse_header(header: bytes) -> Signature:
    timestamp: str | None = None
    signatures: list[bytes] = []
    for part in header.decode("latin-1").split(","):
        name, equals, value = part.strip().partition("=")
        if not equals:
            continue
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value.encode("latin-1"))
    valid_time = (
        timestamp is not None
        and timestamp.isascii()
        and timestamp.isdigit()
        and len(timestamp) <= _MAX_TIMESTAMP_DIGITS
    )
    if not valid_time or not signatures:
        raise InvalidSignature(
            "The x-langfuse-signature header is malformed: expected 't=<unix seconds>,v1=<hex>'."
        )
    assert timestamp is not None
    return Signature(timestamp, tuple(signatures))


def _digest(key: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
