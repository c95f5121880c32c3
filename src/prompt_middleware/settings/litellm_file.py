"""LiteLLM's config file (``PROMPT_MIDDLEWARE_CONFIG``): ``model_list``, ``prompts`` and the
``master_key`` of ``general_settings``; see the README, "The config file". Our own
``experiments`` section is read by :mod:`prompt_middleware.experiments` (README, "Experiments").

Other sections and keys are ignored with a warning log (logged, never printed: the
application configures logging). ``os.environ/NAME`` values are read from the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
import structlog
import yaml

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.experiments import Experiment, parse_experiments
from prompt_middleware.parameters import CHAT_COMPLETION_PARAMETERS
from prompt_middleware.settings.records import ModelEntry, PromptBinding, Secret, decode_secret
from prompt_middleware.stores.kinds import STORE_KINDS

__all__ = ["LiteLLMConfig", "load_config_file"]

logger = structlog.get_logger(__name__)

_STORE_ENTRY_KEYS: Final = {key: f for kind in STORE_KINDS for key, f in kind.entry_keys.items()}
_ENTRY_KEYS: Final = frozenset(
    {"model", "prompt_id", "prompt_label", "prompt_version", "api_base", "api_key"}
) | frozenset(_STORE_ENTRY_KEYS)
# A LiteLLM spelling -> the ModelEntry field it sets when the field's own key is absent.
_ENTRY_KEY_ALIASES: Final = {key: f for key, f in _STORE_ENTRY_KEYS.items() if key != f}
_KNOWN_SECTIONS: Final = frozenset({"model_list", "general_settings", "prompts", "experiments"})
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


class LiteLLMConfig(msgspec.Struct, frozen=True):
    """What the config file gives the settings."""

    model_list: tuple[ModelEntry, ...] = ()
    api_keys: tuple[Secret, ...] = ()
    prompts: tuple[PromptBinding, ...] = ()
    experiments: tuple[Experiment, ...] = ()


def load_config_file(path: Path, environ: Mapping[str, str]) -> LiteLLMConfig:
    """Read and check the file; :class:`ConfigurationError` names what to fix."""
    where = f"PROMPT_MIDDLEWARE_CONFIG={str(path)!r}"
    document = _read_yaml(path, where)
    if document is None:
        return LiteLLMConfig()
    ignored = sorted(str(key) for key in document if key not in _KNOWN_SECTIONS)
    if ignored:
        logger.warning("config_sections_ignored", path=str(path), sections=ignored)
    entries = tuple(
        _parse_entry(raw, f"{where}: model_list[{index}]", environ)
        for index, raw in enumerate(_section_list(document, "model_list", where))
    )
    general = document.get("general_settings") or {}
    master_key = general.get("master_key") if isinstance(general, dict) else None
    api_keys: tuple[Secret, ...] = ()
    if master_key is not None:
        where_key = f"{where}: general_settings.master_key"
        api_keys = (Secret(str(_resolve_environ(master_key, where_key, environ))),)
    prompts = tuple(
        _parse_prompt_binding(raw, f"{where}: prompts[{index}]", environ)
        for index, raw in enumerate(_section_list(document, "prompts", where))
    )
    experiments = parse_experiments(document.get("experiments"), where)
    return LiteLLMConfig(
        model_list=entries, api_keys=api_keys, prompts=prompts, experiments=experiments
    )


def _read_yaml(path: Path, where: str) -> dict[Any, Any] | None:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{where}: cannot read the file ({exc.strerror}).") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{where}: not valid YAML ({exc}).") from None
    if document is not None and not isinstance(document, dict):
        raise ConfigurationError(f"{where}: the file must be a YAML mapping.")
    return document


def _section_list(document: dict[Any, Any], name: str, where: str) -> list[Any]:
    section = document.get(name)
    if section is None:
        return []
    if not isinstance(section, list):
        raise ConfigurationError(f"{where}: {name} must be a list.")
    return section


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
    for alias, field in _ENTRY_KEY_ALIASES.items():
        if alias in fields:
            fields.setdefault(field, fields.pop(alias))
    fields["params"] = {k: v for k, v in params.items() if k in CHAT_COMPLETION_PARAMETERS}
    fields["model_name"] = raw["model_name"]
    try:
        return msgspec.convert(fields, ModelEntry, strict=False, dec_hook=decode_secret)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"{where}: {exc}.") from None


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
        binding = msgspec.convert(fields, PromptBinding, strict=False, dec_hook=decode_secret)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"{where}: {exc}.") from None
    if binding.integration == "generic_prompt_management" and binding.api_base is None:
        raise ConfigurationError(f"{where}: generic_prompt_management needs an api_base.")
    return binding


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _resolve_environ(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("os.environ/"):
        name = value.removeprefix("os.environ/")
        if name not in environ:
            raise ConfigurationError(f"{where} reads {name} from the environment, which is unset.")
        return environ[name]
    return value
