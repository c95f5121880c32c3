"""Typed, frozen settings from environment variables and an optional LiteLLM-style config file.

Every variable is read in one place, :meth:`Settings.from_env`, from an injectable mapping so
tests pass a dict. A bad value fails at start-up with the variable's name and the value
(secrets print as ``**********``), never later on a request. Loading settings only logs (a
warning for an ignored config-file key); it never prints or configures logging.

* ``records.py``: :class:`Secret`, :class:`ModelEntry`, :class:`PromptBinding`;
* ``environment.py``: which variable sets which field;
* ``litellm_file.py``: the config file's ``model_list``, ``prompts`` and ``general_settings``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec

from prompt_middleware.cache import CachePolicy
from prompt_middleware.experiments.records import Experiment
from prompt_middleware.render import ClientMessagesMode, RenderOptions
from prompt_middleware.settings.environment import EnvironmentReader
from prompt_middleware.settings.litellm_file import load_config_file
from prompt_middleware.settings.records import ModelEntry, PromptBinding, Secret

__all__ = ["DEFAULT_ROUTES", "ModelEntry", "PromptBinding", "Secret", "Settings"]

# Each API's routes (README, "Three APIs"); not a bare "/messages", which a wrapped app may have.
DEFAULT_ROUTES: Final = (
    "/v1/chat/completions",
    "/chat/completions",
    "/v1/responses",
    "/responses",
    "/v1/messages",
)
# Files are edited in place: the folder store re-reads a changed file within half a second,
# and the cache holds its prompts no longer, so an edit shows within one second.
_FILE_TTL_SECONDS: Final = 0.5

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything prompt-middleware can be told; see the README's table for each variable.

    Fields are grouped by the part that reads them; each part's options are derived from
    them in one place, the properties below (:attr:`render_options`, :attr:`cache_policy`,
    :attr:`file_cache_policy`).
    """

    # --- the doors: which requests are managed, and how large they may be
    routes: tuple[str, ...] = DEFAULT_ROUTES
    max_body_bytes: PositiveInt = 16 * 1024 * 1024
    # --- the doors' traces (README, "Traces"). Where spans go and how they are batched is
    # OpenTelemetry's own OTEL_* variables (endpoint, headers, service name, OTEL_BSP_*), which
    # its SDK reads from the process environment itself.
    traces: Literal["off", "langfuse", "otlp"] = "off"
    trace_content: bool = True
    # --- the engine: resolving a request, its variables, rendering, parameters
    default_store: str | None = None
    text_prompt_role: Literal["user", "system"] = "user"
    messages_placeholder: str = "messages"
    # None: each API's own default (chat ignores the client's messages, the others append).
    client_messages: ClientMessagesMode | None = None
    strict_variables: bool = False
    param_precedence: Literal["prompt", "request"] = "prompt"
    max_variables: PositiveInt = 256
    max_variables_bytes: PositiveInt = 1024 * 1024
    max_variables_depth: PositiveInt = 32
    max_rendered_chars: PositiveInt = 4 * 1024 * 1024
    allow_request_credentials: bool = False
    prewarm: tuple[str, ...] = ()
    # --- the cache and the stores (the store kinds' keys are named in stores/kinds.py)
    store_timeout_seconds: PositiveFloat = 5.0
    cache_ttl_seconds: NonNegativeFloat = 60.0
    cache_max_stale_seconds: NonNegativeFloat = 86400.0
    cache_max_entries: PositiveInt = 1000
    prompts_dir: str = "./prompts"
    langfuse_public_key: str | None = None
    langfuse_secret_key: Secret | None = None
    langfuse_base_url: str = "https://cloud.langfuse.com"
    humanloop_api_key: Secret | None = None
    humanloop_base_url: str = "https://api.humanloop.com/v5"
    stores: tuple[str, ...] = ()
    # --- live updates across workers and replicas (README, "Many replicas")
    #     langfuse_webhook_secret: POST /webhooks/langfuse checks deliveries against it
    #     redis_url: invalidations fanned out to every replica; last known good copies
    #     worker_dir: set by ``serve --workers N`` for its workers, not by hand
    langfuse_webhook_secret: Secret | None = None
    redis_url: Secret | None = None  # a URL may carry Redis's password
    worker_dir: str | None = None
    # --- the config file and what it gives
    config_file: str | None = None
    model_list: tuple[ModelEntry, ...] = ()
    prompts: tuple[PromptBinding, ...] = ()
    experiments: tuple[Experiment, ...] = ()
    # --- the sidecar (``prompt-middleware serve``) and its forwarder
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 4000
    workers: PositiveInt = 1
    upstream_base_url: str | None = None
    upstream_api_key: Secret | None = None
    # Where /v1/messages goes (else the upstream above), and the x-api-key it gets.
    anthropic_base_url: str | None = None
    anthropic_api_key: Secret | None = None
    upstream_connect_timeout_seconds: PositiveFloat = 5.0
    upstream_timeout_seconds: PositiveFloat = 600.0
    upstream_total_timeout_seconds: PositiveFloat | None = None
    api_keys: tuple[Secret, ...] = ()
    echo: bool = False
    detailed_debug: bool = False
    # --- the command-line programs only: a library leaves logging to its application
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @property
    def render_options(self) -> RenderOptions:
        """How the engine turns a prompt into messages."""
        return RenderOptions(
            text_prompt_role=self.text_prompt_role,
            messages_placeholder=self.messages_placeholder,
            client_messages=self.client_messages or "ignore",
            strict_variables=self.strict_variables,
            max_rendered_chars=self.max_rendered_chars,
        )

    @property
    def cache_policy(self) -> CachePolicy:
        """How long a remote store's prompts are fresh, and how long stale ones serve."""
        return CachePolicy(
            ttl_seconds=self.cache_ttl_seconds,
            max_stale_seconds=self.cache_max_stale_seconds,
        )

    @property
    def file_cache_policy(self) -> CachePolicy:
        """The local folder's policy: an edit shows within a second, and is waited for."""
        return CachePolicy(
            ttl_seconds=min(self.cache_ttl_seconds, _FILE_TTL_SECONDS),
            max_stale_seconds=self.cache_max_stale_seconds,
            versions_are_immutable=False,
            revalidate_in_background=False,
        )

    @property
    def langfuse_configured(self) -> bool:
        return self.langfuse_public_key is not None and self.langfuse_secret_key is not None

    @property
    def resolved_default_store(self) -> str:
        """``PROMPT_MIDDLEWARE_DEFAULT_STORE``, else Langfuse when its keys are set, else files."""
        if self.default_store is not None:
            return self.default_store
        return "langfuse" if self.langfuse_configured else "file"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``environ`` (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = _ENVIRONMENT.read(env)
        config_file = values.get("config_file")
        if config_file is not None:
            config = load_config_file(Path(config_file), env)
            values["model_list"] = config.model_list
            values["prompts"] = config.prompts
            values["experiments"] = config.experiments
            # LiteLLM's master key is one more accepted sidecar key.
            values["api_keys"] = (*values.get("api_keys", ()), *config.api_keys)
        return cls(**values)


_ENVIRONMENT: Final = EnvironmentReader(msgspec.structs.fields(Settings))
