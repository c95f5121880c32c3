"""The one exception hierarchy of prompt-middleware, and its mapping to JSON errors.

    PromptMiddlewareError               every error this package raises
    ├── ConfigurationError              bad settings; raised at start-up, never per request
    └── RequestError                    answered to the client as OpenAI-shaped JSON
        ├── InvalidRequest              400 invalid_request
        ├── InvalidPromptRequest        400 invalid_prompt_request
        ├── InvalidApiKey               401 invalid_api_key
        ├── InvalidSignature            401 invalid_signature
        ├── PromptNotFound              404 prompt_not_found
        ├── RequestTooLarge             413 request_too_large
        ├── PromptStoreUnavailable      502 prompt_store_unavailable
        ├── UpstreamUnavailable         502 upstream_unavailable
        └── UpstreamTimeout             504 upstream_timeout

Messages say what to fix and never contain a secret: they are sent to clients and logged.
Foreign errors (httpx2, OS, YAML) are translated once, where they are caught, with
``raise Ours(...) from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import msgspec
from starlette.types import Send

from prompt_middleware.asgi import send_response

__all__ = [
    "ConfigurationError",
    "InvalidApiKey",
    "InvalidPromptRequest",
    "InvalidRequest",
    "InvalidSignature",
    "PromptMiddlewareError",
    "PromptNotFound",
    "PromptStoreUnavailable",
    "RequestError",
    "RequestTooLarge",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "send_error",
]


class PromptMiddlewareError(Exception):
    """Base class of every error raised by prompt-middleware."""


class ConfigurationError(PromptMiddlewareError, ValueError):
    """A setting, environment variable or config file is invalid."""


class _ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody


_encode = msgspec.json.Encoder().encode


class RequestError(PromptMiddlewareError):
    """An error answered to the client with ``status_code`` and an OpenAI-shaped JSON body."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    error_type: ClassVar[str] = "api_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def to_json(self) -> bytes:
        """The body of every error (README, "Errors"): ``{"error": {"message", "type", "param",
        "code"}}``."""
        body = _ErrorBody(
            message=self.message, type=self.error_type, param=self.param, code=self.code
        )
        return _encode(_ErrorEnvelope(error=body))


async def send_error(
    send: Send, error: RequestError, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer an ASGI request with ``error``: its status and JSON body, and ``extra_headers``."""
    await send_response(send, error.status_code, error.to_json(), extra_headers=extra_headers)


class InvalidRequest(RequestError):
    """The body is not JSON, not an object, or a field has the wrong type."""

    status_code = 400
    code = "invalid_request"
    error_type = "invalid_request_error"


class InvalidPromptRequest(RequestError):
    """The request names a prompt in a way that cannot be served (label and version, ...)."""

    status_code = 400
    code = "invalid_prompt_request"
    error_type = "invalid_request_error"


class InvalidApiKey(RequestError):
    """The sidecar requires a bearer key and the request has none or a wrong one."""

    status_code = 401
    code = "invalid_api_key"
    error_type = "authentication_error"


class InvalidSignature(RequestError):
    """A Langfuse webhook's ``x-langfuse-signature`` is missing, malformed, wrong or too old."""

    status_code = 401
    code = "invalid_signature"
    error_type = "authentication_error"


class PromptNotFound(RequestError):
    """The store has no such prompt, or not under that label or version."""

    status_code = 404
    code = "prompt_not_found"
    error_type = "not_found_error"


class RequestTooLarge(RequestError):
    """The body is larger than ``PROMPT_MIDDLEWARE_MAX_BODY_BYTES``."""

    status_code = 413
    code = "request_too_large"
    error_type = "invalid_request_error"


class PromptStoreUnavailable(RequestError):
    """The store failed or could not be reached, and no stale copy could be served."""

    status_code = 502
    code = "prompt_store_unavailable"
    error_type = "api_error"


class UpstreamUnavailable(RequestError):
    """The upstream LLM API could not be reached."""

    status_code = 502
    code = "upstream_unavailable"
    error_type = "api_error"


class UpstreamTimeout(RequestError):
    """The upstream LLM API did not answer in time."""

    status_code = 504
    code = "upstream_timeout"
    error_type = "api_error"
