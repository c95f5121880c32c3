"""Typed, frozen settings from environment variables and an optional LiteLLM-style config file.

Every variable is read in one place, :meth:`Settings.from_env`, from an injectable mapping so
tests pass a dict. A bad value fails at start-up with the variable's name and the value
(secrets print as ``**********``), never later on a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
import structlog
import yaml

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.parameters import CHAT_COMPLETION_PARAMETERS
from prompt_middleware.render import ClientMessagesMode, RenderOptions

__all__ = ["DEFAULT_ROUTES", "ModelEntry", "PromptBinding", "Secret", "Settings"]

logger = structlog.get_logger(__name__)

DEFAULT_ROUTES: Final = ("/v1/chat/completions", "/chat/completions")
_MASK: Final = "**********"

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class Secret:
    """A string that never shows itself in a repr, a log line or an error message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ModelEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One ``model_list`` entry: what a client's ``model`` name stands for.

    ``model`` keeps its store prefix (``langfuse/gpt-4o-mini``); ``params`` are the entry's
    default chat-completions parameters, which the request and the prompt override.
    """

    model_name: str
    model: str
    prompt_id: str | None = None
    prompt_label: str | None = None
    prompt_version: int | None = None
    api_base: str | None = None
    api_key: Secret | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    langfuse_public_key: str | None = None
    langfuse_secret_key: Secret | None = None
    langfuse_host: str | None = None
    humanloop_api_key: Secret | None = None
    humanloop_base_url: str | None = None


class PromptBinding(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of LiteLLM's ``prompts:`` section: a ``prompt_id`` bound to a store.

    A request naming ``prompt_id`` is managed by ``integration`` whatever its model.
    ``ignore_prompt_manager_model`` keeps the request's model; ``ignore_prompt_manager_
    optional_params`` keeps the prompt's parameters out of the request.
    """

    prompt_id: str
    integration: Literal["generic_prompt_management", "langfuse", "dotprompt", "humanloop"]
    api_base: str | None = None
    api_key: Secret | None = None
    query_params: dict[str, str] = msgspec.field(default_factory=dict)
    ignore_prompt_manager_model: bool = False
    ignore_prompt_manager_optional_params: bool = False


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything prompt-middleware can be told; see the README's table for each variable."""

    routes: tuple[str, ...] = DEFAULT_ROUTES
    prompts_dir: str = "./prompts"
    default_store: str | None = None
    text_prompt_role: Literal["user", "system"] = "user"
    messages_placeholder: str = "messages"
    client_messages: ClientMessagesMode = "ignore"
    strict_variables: bool = False
    param_precedence: Literal["prompt", "request"] = "prompt"
    max_body_bytes: PositiveInt = 16 * 1024 * 1024
    max_variables: PositiveInt = 256
    max_variables_bytes: PositiveInt = 1024 * 1024
    max_variables_depth: PositiveInt = 32
    max_rendered_chars: PositiveInt = 4 * 1024 * 1024
    store_timeout_seconds: PositiveFloat = 5.0
    cache_ttl_seconds: NonNegativeFloat = 60.0
    cache_max_stale_seconds: NonNegativeFloat = 86400.0
    cache_max_entries: PositiveInt = 1000
    prewarm: tuple[str, ...] = ()
    config_file: str | None = None
    allow_request_credentials: bool = False
    langfuse_public_key: str | None = None
    langfuse_secret_key: Secret | None = None
    langfuse_base_url: str = "https://cloud.langfuse.com"
    humanloop_api_key: Secret | None = None
    humanloop_base_url: str = "https://api.humanloop.com/v5"
    stores: tuple[str, ...] = ()
    model_list: tuple[ModelEntry, ...] = ()
    prompts: tuple[PromptBinding, ...] = ()
    # The sidecar (``prompt-middleware serve``) and its forwarder.
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 4000
    workers: PositiveInt = 1
    upstream_base_url: str | None = None
    upstream_api_key: Secret | None = None
    upstream_connect_timeout_seconds: PositiveFloat = 5.0
    upstream_timeout_seconds: PositiveFloat = 600.0
    upstream_total_timeout_seconds: PositiveFloat | None = None
    api_keys: tuple[Secret, ...] = ()
    echo: bool = False
    detailed_debug: bool = False
    # Read by the command-line programs only: a library leaves logging to its application.
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @property
    def render_options(self) -> RenderOptions:
        return RenderOptions(
            text_prompt_role=self.text_prompt_role,
            messages_placeholder=self.messages_placeholder,
            client_messages=self.client_messages,
            strict_variables=self.strict_variables,
            max_rendered_chars=self.max_rendered_chars,
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
        values: dict[str, Any] = {}
        for field, names in _ENVIRONMENT.items():
            found = next(((name, env[name]) for name in names if env.get(name, "") != ""), None)
            if found is not None:
                values[field] = _convert_variable(found[0], found[1], field)
        config_file = values.get("config_file")
        if config_file is not None:
            config = _load_config_file(Path(config_file), env)
            values["model_list"] = config.model_list
            values["prompts"] = config.prompts
            # LiteLLM's master key is one more accepted sidecar key.
            values["api_keys"] = (*values.get("api_keys", ()), *config.api_keys)
        return cls(**values)


# Field -> the variables that set it, first found wins (LANGFUSE_BASE_URL before
# LANGFUSE_HOST, as the Langfuse SDK reads them).
_PREFIX: Final = "PROMPT_MIDDLEWARE_"
_SPECIAL_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "config_file": (_PREFIX + "CONFIG",),
    "langfuse_public_key": ("LANGFUSE_PUBLIC_KEY",),
    "langfuse_secret_key": ("LANGFUSE_SECRET_KEY",),
    "langfuse_base_url": ("LANGFUSE_BASE_URL", "LANGFUSE_HOST"),
    "humanloop_api_key": ("HUMANLOOP_API_KEY",),
    "humanloop_base_url": ("HUMANLOOP_BASE_URL",),
}
_ENVIRONMENT: Final[dict[str, tuple[str, ...]]] = {
    field.name: _SPECIAL_NAMES.get(field.name, (_PREFIX + field.name.upper(),))
    for field in msgspec.structs.fields(Settings)
    if field.name not in ("model_list", "prompts")
}

_FIELD_TYPES: Final = {field.name: field.type for field in msgspec.structs.fields(Settings)}
_LIST_FIELDS: Final = frozenset({"routes", "prewarm", "api_keys", "stores"})
_SECRET_TYPES: Final = (Secret, Secret | None, tuple[Secret, ...])


def _decode_secret(type_: type, value: Any) -> Any:
    if type_ is Secret and isinstance(value, str):
        return Secret(value)
    raise NotImplementedError


def _convert_variable(name: str, raw: str, field: str) -> Any:
    value: Any = raw.strip()
    if field in _LIST_FIELDS:
        value = tuple(item.strip() for item in raw.split(",") if item.strip())
    try:
        return msgspec.convert(value, _FIELD_TYPES[field], strict=False, dec_hook=_decode_secret)
    except msgspec.ValidationError as exc:
        shown = _MASK if _FIELD_TYPES[field] in _SECRET_TYPES else repr(raw)
        reason = str(exc).split(" - at ", 1)[0]
        raise ConfigurationError(f"{name}={shown} is invalid: {reason}.") from None


# --- the config file ----------------------------------------------------------------------

_ENTRY_KEYS: Final = frozenset(
    {
        "model",
        "prompt_id",
        "prompt_label",
        "prompt_version",
        "api_base",
        "api_key",
        "langfuse_public_key",
        "langfuse_secret_key",
        "langfuse_secret",
        "langfuse_host",
        "humanloop_api_key",
        "humanloop_base_url",
    }
)
_KNOWN_SECTIONS: Final = frozenset({"model_list", "general_settings", "prompts"})


class _ConfigFile(msgspec.Struct, frozen=True):
    model_list: tuple[ModelEntry, ...] = ()
    api_keys: tuple[Secret, ...] = ()
    prompts: tuple[PromptBinding, ...] = ()


def _load_config_file(path: Path, environ: Mapping[str, str]) -> _ConfigFile:
    where = f"PROMPT_MIDDLEWARE_CONFIG={str(path)!r}"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{where}: cannot read the file ({exc.strerror}).") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{where}: not valid YAML ({exc}).") from None
    if document is None:
        return _ConfigFile()
    if not isinstance(document, dict):
        raise ConfigurationError(f"{where}: the file must be a YAML mapping.")
    ignored = sorted(str(key) for key in document if key not in _KNOWN_SECTIONS)
    if ignored:
        logger.warning("config_sections_ignored", path=str(path), sections=ignored)
    raw_entries = document.get("model_list")
    if raw_entries is None:
        raw_entries = []
    if not isinstance(raw_entries, list):
        raise ConfigurationError(f"{where}: model_list must be a list.")
    entries = tuple(
        _parse_entry(raw, f"{where}: model_list[{index}]", environ)
        for index, raw in enumerate(raw_entries)
    )
    general = document.get("general_settings") or {}
    master_key = general.get("master_key") if isinstance(general, dict) else None
    api_keys: tuple[Secret, ...] = ()
    if master_key is not None:
        where_key = f"{where}: general_settings.master_key"
        api_keys = (Secret(str(_resolve_environ(master_key, where_key, environ))),)
    raw_prompts = document.get("prompts")
    if raw_prompts is None:
        raw_prompts = []
    if not isinstance(raw_prompts, list):
        raise ConfigurationError(f"{where}: prompts must be a list.")
    prompts = tuple(
        _parse_prompt_binding(raw, f"{where}: prompts[{index}]", environ)
        for index, raw in enumerate(raw_prompts)
    )
    return _ConfigFile(model_list=entries, api_keys=api_keys, prompts=prompts)


_BINDING_KEYS: Final = frozenset(
    {
        "prompt_integration",
        "api_base",
        "api_key",
        "provider_specific_query_params",
        "ignore_prompt_manager_model",
        "ignore_prompt_manager_optional_params",
    }
)


def _parse_prompt_binding(raw: Any, where: str, environ: Mapping[str, str]) -> PromptBinding:
    if not isinstance(raw, dict) or not isinstance(raw.get("prompt_id"), str):
        raise ConfigurationError(f"{where}: an entry needs a string prompt_id.")
    params = raw.get("litellm_params") or {}
    if not isinstance(params, dict):
        raise ConfigurationError(f"{where}: litellm_params must be a mapping.")
    params = {
        key: _resolve_environ(value, f"{where}.litellm_params.{key}", environ)
        for key, value in params.items()
    }
    unused = sorted(key for key in params if key not in _BINDING_KEYS)
    if unused:
        logger.warning("prompt_binding_keys_ignored", prompt_id=raw["prompt_id"], keys=unused)
    query = params.get("provider_specific_query_params") or {}
    if not isinstance(query, dict):
        raise ConfigurationError(f"{where}: provider_specific_query_params must be a mapping.")
    fields = {
        "prompt_id": raw["prompt_id"],
        "integration": params.get("prompt_integration"),
        "api_base": params.get("api_base"),
        "api_key": params.get("api_key"),
        # YAML reads `version: 2` as a number; a query string holds text.
        "query_params": {str(k): _query_value(v) for k, v in query.items()},
        "ignore_prompt_manager_model": params.get("ignore_prompt_manager_model", False),
        "ignore_prompt_manager_optional_params": params.get(
            "ignore_prompt_manager_optional_params", False
        ),
    }
    try:
        binding = msgspec.convert(fields, PromptBinding, strict=False, dec_hook=_decode_secret)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"{where}: {exc}.") from None
    if binding.integration == "generic_prompt_management" and binding.api_base is None:
        raise ConfigurationError(f"{where}: generic_prompt_management needs an api_base.")
    return binding


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_entry(raw: Any, where: str, environ: Mapping[str, str]) -> ModelEntry:
    if not isinstance(raw, dict) or not isinstance(raw.get("model_name"), str):
        raise ConfigurationError(f"{where}: an entry needs a string model_name.")
    params = raw.get("litellm_params") or {}
    if not isinstance(params, dict) or not isinstance(params.get("model"), str):
        raise ConfigurationError(f"{where}: litellm_params.model must be a string.")
    params = {
        key: _resolve_environ(value, f"{where}.litellm_params.{key}", environ)
        for key, value in params.items()
    }
    unused = sorted(
        k for k in params if k not in _ENTRY_KEYS and k not in CHAT_COMPLETION_PARAMETERS
    )
    if unused:
        logger.warning("model_entry_keys_ignored", entry=raw["model_name"], keys=unused)
    fields: dict[str, Any] = {k: v for k, v in params.items() if k in _ENTRY_KEYS}
    if "langfuse_secret" in fields:
        fields.setdefault("langfuse_secret_key", fields.pop("langfuse_secret"))
    fields["params"] = {k: v for k, v in params.items() if k in CHAT_COMPLETION_PARAMETERS}
    fields["model_name"] = raw["model_name"]
    try:
        return msgspec.convert(fields, ModelEntry, strict=False, dec_hook=_decode_secret)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"{where}: {exc}.") from None


def _resolve_environ(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("os.environ/"):
        name = value.removeprefix("os.environ/")
        if name not in environ:
            raise ConfigurationError(f"{where} reads {name} from the environment, which is unset.")
        return environ[name]
    return value
