"""The sidecar: the middleware in front of the embedded forwarder (or the echo upstream).

    client -> Sidecar (health, readiness, metrics, API keys, /cache/invalidate)
           -> PromptMiddleware (the rewrite, the Langfuse webhook, live updates)
           -> Forwarder (the upstream LLM API) | EchoUpstream (--echo)

``prompt-middleware serve`` runs :func:`create_app_from_env` under uvicorn.

The sidecar's own endpoints are :class:`Endpoint` entries in ``Sidecar.endpoints``, by path; a
request for any other path, or another method, goes on to the middleware. An open endpoint
(the probes; a webhook that checks its own signature) needs no sidecar key.

Live updates (README, "Many replicas") are the middleware's: it answers
``POST /webhooks/langfuse`` (with a webhook secret; the sidecar only lets it through without a
key) and starts and closes them in its lifespan. The sidecar builds them (so that Redis's state
reaches its metrics) and adds ``POST /cache/invalidate``, behind its keys, on their bus.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prompt_middleware.apis import ANTHROPIC, api_of
from prompt_middleware.asgi import send_response
from prompt_middleware.errors import ConfigurationError, InvalidApiKey
from prompt_middleware.live.apply import store_prefixes
from prompt_middleware.live.endpoints import INVALIDATE_PATH, WEBHOOK_PATH, answer_invalidate
from prompt_middleware.live.updates import LiveUpdates
from prompt_middleware.middleware import PromptMiddleware
from prompt_middleware.settings import Settings
from prompt_middleware.sidecar.echo import EchoUpstream
from prompt_middleware.sidecar.forwarder import Forwarder
from prompt_middleware.sidecar.garbage import set_for_serving
from prompt_middleware.sidecar.logs import configure_early_logging, configure_logging
from prompt_middleware.sidecar.metrics import CONTENT_TYPE, PrometheusMetrics
from prompt_middleware.sidecar.shared_metrics import SharedMetrics
from prompt_middleware.stores.base import PromptStore

__all__ = ["Endpoint", "Sidecar", "create_app_from_env"]

_PROBE_METHODS: Final = frozenset({"GET", "HEAD"})
_POST: Final = frozenset({"POST"})
_BEARER: Final = "bearer "
_KEY_HEADERS: Final = frozenset({b"authorization"})
_ANTHROPIC_KEY_HEADERS: Final = frozenset({b"authorization", b"x-api-key"})
_METRICS_TYPE: Final = CONTENT_TYPE.encode("ascii")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One of the sidecar's own endpoints: what answers it, for which methods, and whether it
    is open (no sidecar key needed)."""

    handle: Callable[[Scope, Receive, Send], Awaitable[None]]
    methods: frozenset[str]
    open: bool = False


class Sidecar:
    """The standalone app: probes and metrics, sidecar keys, then middleware and upstream."""

    def __init__(
        self,
        settings: Settings,
        *,
        upstream: ASGIApp | None = None,
        stores: Mapping[str, PromptStore] | None = None,
    ) -> None:
        """``upstream`` defaults to the forwarder, or the echo upstream when ``settings.echo``."""
        # The workers of one ``serve --workers N`` (it sets worker_dir) count in shared files.
        self.metrics: PrometheusMetrics | SharedMetrics = (
            SharedMetrics() if settings.worker_dir else PrometheusMetrics()
        )
        if upstream is None and settings.echo:
            upstream = EchoUpstream()
        elif upstream is None:
            _require_upstream(settings)
            upstream = Forwarder(
                settings,
                on_upstream_response=self.metrics.upstream_response,
                detailed_debug=settings.detailed_debug,
            )
        live = LiveUpdates.from_settings(settings, on_redis_state=self.metrics.redis_state)
        self.middleware = PromptMiddleware(
            upstream, settings, stores=stores, observer=self.metrics, live=live
        )
        self.live = live
        self.metrics.count_dropped_spans(self.middleware.tracing)
        self._keys = tuple(key.get_secret_value().encode() for key in settings.api_keys)
        self._ready = False
        self.endpoints: dict[str, Endpoint] = {
            "/healthz": Endpoint(self._healthz, _PROBE_METHODS, open=True),
            "/readyz": Endpoint(self._readyz, _PROBE_METHODS, open=True),
            "/metrics": Endpoint(self._metrics, _PROBE_METHODS, open=True),
            INVALIDATE_PATH: Endpoint(
                partial(
                    answer_invalidate,
                    bus=live.bus,
                    store_prefix=store_prefixes(self.middleware.engine),
                    max_body_bytes=settings.max_body_bytes,
                ),
                _POST,
            ),
        }
        if self.middleware.answers_webhook:
            # The middleware answers it; open here: the signature is its credential, and
            # Langfuse sends no sidecar key.
            self.endpoints[WEBHOOK_PATH] = Endpoint(self.middleware, _POST, open=True)

    @property
    def ready(self) -> bool:
        """True once start-up (prewarm included) is complete."""
        return self._ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.middleware(scope, receive, self._watch_lifespan(send))
            return
        if scope["type"] != "http":
            await self.middleware(scope, receive, send)
            return
        endpoint = self.endpoints.get(scope["path"])
        if endpoint is not None and scope["method"] not in endpoint.methods:
            endpoint = None  # not ours: the upstream's to answer
        if endpoint is not None and endpoint.open:
            await endpoint.handle(scope, receive, send)
            return
        if self._keys:
            # Anthropic's SDK sends its key as x-api-key or Authorization: Bearer; ours may
            # come in either on its paths.
            api = api_of(scope)
            key_headers = _ANTHROPIC_KEY_HEADERS if api.provider == ANTHROPIC else _KEY_HEADERS
            carriers = self._key_carriers(scope, key_headers)
            if not carriers:
                error = InvalidApiKey(
                    "A valid sidecar key is required: send 'Authorization: Bearer <key>' with "
                    "one of PROMPT_MIDDLEWARE_API_KEYS."
                )
                await api.send_error(send, error)
                return
            # The sidecar's key is ours, not the upstream's: never pass it on.
            headers = [(k, v) for k, v in scope["headers"] if k not in carriers]
            scope = {**scope, "headers": headers}
        if endpoint is not None:
            await endpoint.handle(scope, receive, send)
            return
        await self.middleware(scope, receive, send)

    def _key_carriers(self, scope: Scope, names: frozenset[bytes]) -> frozenset[bytes]:
        """The headers (of ``names``) that carry one of the sidecar's keys; none: refused."""
        carriers: set[bytes] = set()
        compared = False
        for name, value in scope["headers"]:
            if name not in names:
                continue
            if name == b"authorization":
                if value[: len(_BEARER)].lower() != _BEARER.encode():
                    continue
                value = value[len(_BEARER) :].strip()
            compared = True
            if self._is_key(value) and value:
                carriers.add(name)
        if not compared:
            self._is_key(b"")  # no key offered takes as long as a wrong one
        return frozenset(carriers)

    def _is_key(self, offered: bytes) -> bool:
        # Compare with every key, always: how long this takes must not tell which key is near.
        matches = [hmac.compare_digest(offered, key) for key in self._keys]
        return any(matches)

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, b'{"status":"ok"}')

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, body = (200, b'{"ready":true}') if self._ready else (503, b'{"ready":false}')
        await send_response(send, status, body)

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, self.metrics.render(), _METRICS_TYPE)

    def _watch_lifespan(self, send: Send) -> Send:
        async def watching_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self._ready = True
            elif message["type"] == "lifespan.shutdown.complete":
                self.metrics.close()
            await send(message)

        return watching_send


def create_app_from_env() -> Sidecar:
    """The sidecar as ``prompt-middleware serve`` runs it: settings from the environment."""
    configure_early_logging()
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    sidecar = Sidecar(settings)
    set_for_serving()  # this process is ours: its collector is set for a server's load
    return sidecar


def _require_upstream(settings: Settings) -> None:
    if (
        settings.upstream_base_url is None
        and settings.anthropic_base_url is None
        and not any(e.api_base for e in settings.model_list)
    ):
        raise ConfigurationError(
            "No upstream to forward to: set PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL (or an api_base "
            "in the config file's model_list), or start with --echo for a dry run that answers "
            "with the rewritten request."
        )
