"""prompt-middleware: managed prompts in front of OpenAI-compatible chat endpoints.

The library core (the middleware, the transport, the engine, the stores) is imported here;
the sidecar's parts live in :mod:`prompt_middleware.sidecar`. ``Forwarder`` and
``HttpxPromptTransport`` stay importable from here, but are loaded on first use, so
``import prompt_middleware`` loads neither aiohttp nor httpx (an optional extra).
"""

from typing import TYPE_CHECKING, Any

from prompt_middleware.cache import CachePolicy, CacheStatus, PromptCache
from prompt_middleware.engine import RewriteEngine, RewriteResult
from prompt_middleware.errors import (
    ConfigurationError,
    InvalidApiKey,
    InvalidPromptRequest,
    InvalidRequest,
    InvalidSignature,
    PromptMiddlewareError,
    PromptNotFound,
    PromptStoreUnavailable,
    RequestError,
    RequestTooLarge,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from prompt_middleware.live.updates import LiveUpdates
from prompt_middleware.middleware import PromptMiddleware
from prompt_middleware.prepare import render_prompt
from prompt_middleware.prompts import ChatMessage, Placeholder, Prompt, PromptQuery
from prompt_middleware.render import RenderOptions, compile_template
from prompt_middleware.settings import ModelEntry, Secret, Settings
from prompt_middleware.stores import LocalPromptStore, PromptStore
from prompt_middleware.tracing import Tracing
from prompt_middleware.transport import PromptTransport

if TYPE_CHECKING:
    from prompt_middleware.sidecar.forwarder import Forwarder
    from prompt_middleware.transport_httpx import HttpxPromptTransport

__all__ = [
    "CachePolicy",
    "CacheStatus",
    "ChatMessage",
    "ConfigurationError",
    "Forwarder",
    "HttpxPromptTransport",
    "InvalidApiKey",
    "InvalidPromptRequest",
    "InvalidRequest",
    "InvalidSignature",
    "LiveUpdates",
    "LocalPromptStore",
    "ModelEntry",
    "Placeholder",
    "Prompt",
    "PromptCache",
    "PromptMiddleware",
    "PromptMiddlewareError",
    "PromptNotFound",
    "PromptQuery",
    "PromptStore",
    "PromptStoreUnavailable",
    "PromptTransport",
    "RenderOptions",
    "RequestError",
    "RequestTooLarge",
    "RewriteEngine",
    "RewriteResult",
    "Secret",
    "Settings",
    "Tracing",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "compile_template",
    "render_prompt",
]


def __getattr__(name: str) -> Any:
    if name == "Forwarder":
        from prompt_middleware.sidecar.forwarder import Forwarder

        return Forwarder
    if name == "HttpxPromptTransport":
        from prompt_middleware.transport_httpx import HttpxPromptTransport

        return HttpxPromptTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
