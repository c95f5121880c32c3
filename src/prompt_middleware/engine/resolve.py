"""Step 1 of a rewrite: the request's fields and the settings -> one :class:`Resolution`.

Which model-list entry the ``model`` names, which store (a prefix, a ``prompts:`` binding, an
entry's own keys, a tenant's keys, or the default store), which prompt and label or version,
and whether the prompt's model and parameters apply. Nothing here awaits or fetches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

import msgspec

from prompt_middleware.cache import CacheKey
from prompt_middleware.engine.credentials import CredentialReader
from prompt_middleware.engine.plan import PROVIDER_PREFIX
from prompt_middleware.errors import InvalidPromptRequest
from prompt_middleware.experiments import Arm, ExperimentIndex, Split, assign
from prompt_middleware.experiments.assign import UserOf, user_field
from prompt_middleware.header_values import header_value
from prompt_middleware.prompts import DEFAULT_LABEL, PromptQuery
from prompt_middleware.request import (
    Field,
    RequestFields,
    decode_field,
    decode_version,
    extension_fields,
)
from prompt_middleware.settings import ModelEntry, Settings
from prompt_middleware.stores.kinds import STORE_ALIASES
from prompt_middleware.stores.registry import RequestCredentials, StoreBinding, StoreRegistry

__all__ = ["MAX_REMEMBERED", "ExperimentChoice", "Resolution", "Resolver", "Target"]

# A service sends a handful of model names and prompt names: each is worked out once. Least
# recently used ones go past MAX_REMEMBERED, so made-up names cannot grow memory.
MAX_REMEMBERED: Final = 1024
_MODEL: Final = Field("model", str)
_PROMPT_ID: Final = Field("prompt_id", str)
_PROMPT_ONLY_FIELDS: Final = ("prompt_variables", "prompt_label", "prompt_version")


@dataclass(frozen=True, slots=True)
class Target:
    """The prompt of a store a request names: worked out once per (store prefix, model-list
    entry, prompt, label, version) and remembered, unless the request carries credentials."""

    binding: StoreBinding
    query: PromptQuery
    use_prompt_model: bool = True
    use_prompt_params: bool = True
    cache_key: CacheKey = field(init=False)
    store_header: tuple[bytes, bytes] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_key", (self.binding.cache_key, self.query))
        object.__setattr__(
            self, "store_header", (b"x-prompt-store", header_value(self.binding.prefix))
        )


class ExperimentChoice(msgspec.Struct, frozen=True):
    """The experiment on a request's prompt and the variant the request got (README,
    "Experiments")."""

    split: Split
    arm: Arm
    #: The control's target, served should the request's (another variant's) fail; None
    #: when the request got the control.
    control: Target | None


class Resolution(msgspec.Struct, frozen=True):
    """A managed request, resolved: what the fetch and the compose steps need."""

    #: The model-list entry ``model`` names, if any.
    entry: ModelEntry | None
    #: The request's model without its store prefix (and, for an entry, provider prefix).
    model: str | None
    #: The extension fields to take out of the body: ``prompt_*``, then store-prefixed ones.
    extensions: tuple[str, ...]
    prefixed: tuple[str, ...]
    #: None when no prompt is named: only the model and the entry's parameters change.
    target: Target | None
    #: None when no experiment applies (none on the prompt, or the body pins a label or
    #: version).
    experiment_choice: ExperimentChoice | None = None


class Resolver:
    """Resolves requests against one engine's settings and stores."""

    def __init__(self, settings: Settings, registry: StoreRegistry) -> None:
        self._entries = {entry.model_name: entry for entry in settings.model_list}
        self._registry = registry
        self._credentials = CredentialReader(settings.allow_request_credentials)
        self._store_prefix_of = lru_cache(maxsize=MAX_REMEMBERED)(self._split_store_prefix)
        # Targets with per-request credentials are never remembered.
        self._remembered_target = lru_cache(maxsize=MAX_REMEMBERED)(self._new_target)
        experiments = ExperimentIndex(settings.experiments)
        # A prompt without an experiment costs one dict lookup; no experiments at all, none.
        self._has_experiments = bool(experiments)
        self._experiment_of = experiments.get

    def resolve(
        self,
        fields: RequestFields,
        headers: Iterable[tuple[bytes, bytes]] = (),
        user_of: UserOf = user_field,
    ) -> Resolution | None:
        """The request resolved, or None when it is not managed (it goes on unchanged).

        ``headers`` are read only by an experiment whose sticky key is a header; ``user_of``
        (the API's) only by one whose sticky key is the user.
        """
        model: str | None = _MODEL(fields)
        entry = self._entries.get(model) if model is not None and self._entries else None
        extensions, prefixed = extension_fields(fields)
        prefix, bare_model = self._store_prefix_of(entry.model if entry else model)
        if entry is None and prefix is None and not extensions and not prefixed:
            return None
        if entry is not None and bare_model is not None:
            bare_model = bare_model.removeprefix(PROVIDER_PREFIX)
        prompt_id: str | None = _PROMPT_ID(fields)
        if prompt_id is None and entry is not None:
            prompt_id = entry.prompt_id
        if prompt_id is None:
            _refuse_prompt_fields_without_prompt(fields)
            return Resolution(entry, bare_model, extensions, prefixed, None)
        credentials = self._credentials.read(fields, prefixed) if prefixed else None
        label = version = None
        if "prompt_label" in fields or "prompt_version" in fields:
            label, version = _pinned(fields)  # a field sent as null names nothing
        split = self._experiment_of(prompt_id) if self._has_experiments else None
        if split is not None and label is None and version is None:
            arm, control = assign(split, fields, headers, user_of), split.control
            target = self._target(prefix, entry, prompt_id, arm.label, arm.version, credentials)
            fallback = None
            if not arm.is_control:
                fallback = self._target(
                    prefix, entry, prompt_id, control.label, control.version, credentials
                )
            choice = ExperimentChoice(split, arm, fallback)
            return Resolution(entry, bare_model, extensions, prefixed, target, choice)
        target = self._target(prefix, entry, prompt_id, label, version, credentials)
        return Resolution(entry, bare_model, extensions, prefixed, target)

    def _target(
        self,
        prefix: str | None,
        entry: ModelEntry | None,
        prompt_id: str,
        label: str | None,
        version: int | None,
        credentials: RequestCredentials | None,
    ) -> Target:
        """The target of a label or version (None, None: the entry's, else the default)."""
        model_name = entry.model_name if entry else None
        if credentials is None:
            return self._remembered_target(prefix, model_name, prompt_id, label, version)
        return self._new_target(prefix, model_name, prompt_id, label, version, credentials)

    def _split_store_prefix(self, model: str | None) -> tuple[str | None, str | None]:
        if model is None:
            return None, None
        head, slash, rest = model.partition("/")
        if slash and head in self._registry.prefixes:
            return STORE_ALIASES.get(head, head), rest.removeprefix(PROVIDER_PREFIX)
        return None, model

    def _new_target(
        self,
        prefix: str | None,
        model_name: str | None,
        prompt_id: str,
        label: str | None,
        version: int | None,
        credentials: RequestCredentials | None = None,
    ) -> Target:
        entry = self._entries.get(model_name) if model_name is not None else None
        query = _query(prompt_id, label, version, entry)
        bound = self._registry.for_prompt(prompt_id) if prefix is None else None
        if bound is None:
            return Target(self._registry.resolve(prefix, entry, credentials), query)
        binding, options = bound
        return Target(
            binding,
            query,
            use_prompt_model=not options.ignore_prompt_manager_model,
            use_prompt_params=not options.ignore_prompt_manager_optional_params,
        )


def _pinned(fields: RequestFields) -> tuple[str | None, int | None]:
    label: str | None = decode_field(fields, "prompt_label", str)
    version = decode_version(fields)
    if label is not None and version is not None:
        raise InvalidPromptRequest(
            "Give prompt_label or prompt_version, not both: a version is already one exact prompt.",
            param="prompt_version",
        )
    return label, version


def _query(
    prompt_id: str, label: str | None, version: int | None, entry: ModelEntry | None
) -> PromptQuery:
    """The request's label or version, else the entry's, else the default label."""
    if not prompt_id:
        raise InvalidPromptRequest("'prompt_id' must not be empty.", param="prompt_id")
    if label is None and version is None and entry is not None:
        label, version = entry.prompt_label, entry.prompt_version
    if version is not None:
        return PromptQuery(prompt_id, version=version)
    return PromptQuery(prompt_id, label=label or DEFAULT_LABEL)


def _refuse_prompt_fields_without_prompt(fields: RequestFields) -> None:
    orphans = sorted(name for name in _PROMPT_ONLY_FIELDS if name in fields)
    if orphans:
        raise InvalidPromptRequest(
            f"{', '.join(orphans)} given without prompt_id: name the prompt to use.",
            param="prompt_id",
        )
