"""The forwarder's own errors, answered before the upstream does (README, "Errors").

No upstream for the model: 400 ``invalid_prompt_request``. Refused, unresolvable, reset, or
not connected within ``PROMPT_MIDDLEWARE_UPSTREAM_CONNECT_TIMEOUT_SECONDS``: 502
``upstream_unavailable``. No response within ``PROMPT_MIDDLEWARE_UPSTREAM_TIMEOUT_SECONDS``
(or not finished within the total): 504 ``upstream_timeout``. aiohttp's exceptions are
translated here, once.
"""

from __future__ import annotations

import contextlib

import aiohttp
import msgspec

from prompt_middleware.errors import (
    InvalidPromptRequest,
    RequestError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from prompt_middleware.settings import Settings

__all__ = ["no_upstream", "translate"]


class _Model(msgspec.Struct):
    model: str | None = None


_decode_model = msgspec.json.Decoder(_Model).decode


def no_upstream(body: bytes | None) -> InvalidPromptRequest:
    """The refusal of a request with nowhere to go; ``body`` names its model, if read."""
    model = None
    if body:
        with contextlib.suppress(msgspec.DecodeError):
            model = _decode_model(body).model
    if model is not None:
        return InvalidPromptRequest(
            f"No upstream for model {model!r}: give its model_list entry an api_base or set "
            "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL.",
            param="model",
        )
    return InvalidPromptRequest(
        "No upstream to forward to: set PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL.", param="model"
    )


def translate(
    exc: aiohttp.ClientError | TimeoutError, host: str, settings: Settings
) -> RequestError:
    """The error to answer for an upstream that failed before its response started."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamUnavailable(
            f"Could not connect to the upstream {host} within "
            f"{settings.upstream_connect_timeout_seconds:g} s "
            "(PROMPT_MIDDLEWARE_UPSTREAM_CONNECT_TIMEOUT_SECONDS)."
        )
    total = settings.upstream_total_timeout_seconds
    if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
        # aiohttp's total timeout is a plain TimeoutError; its read timeout a ClientError.
        return UpstreamTimeout(
            f"The upstream {host} did not finish within {total or 0:g} s "
            "(PROMPT_MIDDLEWARE_UPSTREAM_TOTAL_TIMEOUT_SECONDS)."
        )
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(
            f"The upstream {host} sent no response within "
            f"{settings.upstream_timeout_seconds:g} s "
            "(PROMPT_MIDDLEWARE_UPSTREAM_TIMEOUT_SECONDS)."
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.strerror or type(exc.os_error).__name__
        return UpstreamUnavailable(f"Could not connect to the upstream {host}: {reason}.")
    return UpstreamUnavailable(
        f"The upstream {host} failed before answering ({type(exc).__name__})."
    )
