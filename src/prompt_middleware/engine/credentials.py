"""Per-request store credentials (``langfuse_public_key`` / ``langfuse_secret_key``): read
only when ``PROMPT_MIDDLEWARE_ALLOW_REQUEST_CREDENTIALS`` is set; which fields carry them
is the store kind's (``stores/kinds.py``)."""

from __future__ import annotations

from typing import Final

import structlog

from prompt_middleware.errors import InvalidRequest
from prompt_middleware.request import RequestFields, decode_field
from prompt_middleware.stores.kinds import STORE_KINDS, StoreKind
from prompt_middleware.stores.registry import RequestCredentials

__all__ = ["CredentialReader"]

logger = structlog.get_logger(__name__)

_KINDS_WITH_CREDENTIALS: Final = tuple(
    kind for kind in STORE_KINDS if kind.request_credentials and kind.request_prefix
)


class CredentialReader:
    """Reads a tenant's keys from a request's store-prefixed fields."""

    __slots__ = ("_allowed",)

    def __init__(self, allowed: bool) -> None:
        self._allowed = allowed

    def read(self, fields: RequestFields, prefixed: tuple[str, ...]) -> RequestCredentials | None:
        """The credentials the request gives, or None (absent, or not allowed)."""
        for kind in _KINDS_WITH_CREDENTIALS:
            assert kind.request_prefix is not None
            if any(name.startswith(kind.request_prefix) for name in prefixed):
                credentials = self._read_kind(kind, fields)
                if credentials is not None:
                    return credentials
        return None

    def _read_kind(self, kind: StoreKind, fields: RequestFields) -> RequestCredentials | None:
        values: tuple[str | None, ...] = tuple(
            decode_field(fields, name, str) for name in kind.request_credentials
        )
        assert kind.request_prefix is not None
        ignored = sorted(
            name
            for name in fields
            if name.startswith(kind.request_prefix) and name not in kind.request_credentials
        )
        if ignored:
            # The host is configuration, never request data: a client must not be able to
            # send our credentials, or anyone's, to a host of its choosing.
            logger.warning("request_fields_ignored", fields=ignored)
        if all(value is None for value in values):
            return None
        if not self._allowed:
            logger.warning(
                "request_credentials_ignored",
                reason="PROMPT_MIDDLEWARE_ALLOW_REQUEST_CREDENTIALS is not set",
            )
            return None
        missing = [n for n, v in zip(kind.request_credentials, values, strict=True) if v is None]
        if missing:
            raise InvalidRequest(
                f"{' and '.join(kind.request_credentials)} must be given together.",
                param=missing[0],
            )
        return RequestCredentials(kind.prefix, tuple(v for v in values if v is not None))
