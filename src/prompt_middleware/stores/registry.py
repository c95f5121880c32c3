"""Which store serves a managed request, built once from the settings.

The registry owns every store and the one HTTP connection pool the remote stores share. It
decides, per request, between the store a prefix names, a model-list entry's own store
credentials, and (only when ``PROMPT_MIDDLEWARE_ALLOW_REQUEST_CREDENTIALS`` is set) a tenant's
per-request keys. A store's host always comes from the settings or the config file, never
from a request. What each kind of store is called and configured by: ``stores/kinds.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx2

from prompt_middleware.cache import CachePolicy
from prompt_middleware.errors import ConfigurationError, InvalidPromptRequest
from prompt_middleware.settings import ModelEntry, PromptBinding, Settings
from prompt_middleware.settings.records import Secret
from prompt_middleware.stores.base import PromptStore
from prompt_middleware.stores.generic import GenericPromptStore
from prompt_middleware.stores.kinds import (
    KNOWN_STORES,
    STORE_ALIASES,
    STORE_KINDS,
    StoreKind,
    kind_of,
)
from prompt_middleware.stores.local import LocalPromptStore

__all__ = ["RequestCredentials", "StoreBinding", "StoreRegistry"]

# Per-request credentials create a store per tenant; bound them so that a stream of made-up
# keys cannot grow memory without end. A store is only a few objects: the pool is shared.
_MAX_TENANT_STORES: Final = 256
_REMOTE_KINDS: Final = tuple(kind for kind in STORE_KINDS if kind.factory is not None)


@dataclass(frozen=True, slots=True)
class StoreBinding:
    """A store as one request uses it.

    ``prefix`` is what ``x-prompt-store`` shows; ``cache_key`` separates the cache entries of
    stores that share a prefix but not their credentials, so no tenant sees another's prompt.
    """

    prefix: str
    store: PromptStore
    policy: CachePolicy
    cache_key: Hashable


@dataclass(frozen=True, slots=True)
class RequestCredentials:
    """A tenant's keys for one store kind, from the request (``kind.request_credentials``)."""

    kind: str
    secrets: tuple[str, ...]


class StoreRegistry:
    """The stores of one engine, and the rules that pick one for a request."""

    def __init__(
        self,
        settings: Settings,
        *,
        stores: Mapping[str, PromptStore] | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._settings = settings
        self._remote = settings.cache_policy
        self._files = settings.file_cache_policy
        self._owns_client = http_client is None
        self._client = http_client or httpx2.AsyncClient(
            follow_redirects=False,
            limits=httpx2.Limits(max_connections=100, max_keepalive_connections=20),
            headers={"accept": "application/json"},
        )
        local = LocalPromptStore(settings.prompts_dir)
        self._bindings: dict[str, StoreBinding] = {
            "file": StoreBinding("file", local, self._files, "file")
        }
        for kind in _REMOTE_KINDS:
            secrets = _complete(_fields(settings, kind.secret_settings))
            if secrets is not None:
                self._bindings[kind.prefix] = self._build(kind, _base_url(settings, kind), secrets)
        custom = {**_stores_from_settings(settings.stores), **(stores or {})}
        for prefix, store in custom.items():
            policy = self._files if isinstance(store, LocalPromptStore) else self._remote
            self._bindings[prefix] = StoreBinding(prefix, store, policy, prefix)
        self._entry_bindings = {
            entry.model_name: binding
            for entry in settings.model_list
            if (binding := self._entry_store(entry)) is not None
        }
        self._prompt_bindings = {
            binding.prompt_id: (self._prompt_store(binding), binding)
            for binding in settings.prompts
        }
        self._tenants: OrderedDict[Hashable, StoreBinding] = OrderedDict()
        self.prefixes: frozenset[str] = frozenset(self._bindings) | KNOWN_STORES

    def resolve(
        self,
        prefix: str | None,
        entry: ModelEntry | None = None,
        credentials: RequestCredentials | None = None,
    ) -> StoreBinding:
        """The store for a request: ``prefix``, else the default store; 400 if unconfigured."""
        if prefix is None:
            default = self._settings.resolved_default_store
            prefix = STORE_ALIASES.get(default, default)
        if credentials is not None and credentials.kind == prefix:
            return self._tenant(credentials)
        if entry is not None and entry.model_name in self._entry_bindings:
            entry_binding = self._entry_bindings[entry.model_name]
            if entry_binding.prefix == prefix:
                return entry_binding
        binding = self._bindings.get(prefix)
        if binding is None:
            kind = kind_of(prefix)
            how = kind.how_to_configure if kind else "register a store under this prefix"
            raise InvalidPromptRequest(
                f"The prompt store '{prefix}' is not configured: {how}.", param="model"
            )
        return binding

    def for_prompt(self, prompt_id: str) -> tuple[StoreBinding, PromptBinding] | None:
        """The store a ``prompts:`` entry binds ``prompt_id`` to, with the entry's options."""
        return self._prompt_bindings.get(prompt_id)

    async def aclose(self) -> None:
        """Close every store, then the shared connection pool."""
        bindings = [
            *self._bindings.values(),
            *self._entry_bindings.values(),
            *self._tenants.values(),
            *(binding for binding, _ in self._prompt_bindings.values()),
        ]
        stores = {id(binding.store): binding.store for binding in bindings}
        await asyncio.gather(*(store.aclose() for store in stores.values()))
        if self._owns_client:
            await self._client.aclose()

    def _build(self, kind: StoreKind, base_url: str, secrets: tuple[str, ...]) -> StoreBinding:
        assert kind.factory is not None  # only remote kinds are built here
        store = kind.factory(
            base_url=base_url,
            secrets=secrets,
            timeout=self._settings.store_timeout_seconds,
            client=self._client,
        )
        return StoreBinding(
            kind.prefix, store, self._remote, _credential_key(kind, base_url, secrets)
        )

    def _entry_store(self, entry: ModelEntry) -> StoreBinding | None:
        """A model-list entry's own store: the first kind whose keys the entry gives; its
        missing keys and host come from the settings."""
        for kind in _REMOTE_KINDS:
            given = _fields(entry, kind.entry_secrets)
            if all(value is None for value in given):
                continue
            defaults = _fields(self._settings, kind.secret_settings)
            secrets = _complete(tuple(g or d for g, d in zip(given, defaults, strict=True)))
            if secrets is None:
                return None
            base_url = getattr(entry, kind.entry_base_url) if kind.entry_base_url else None
            return self._build(kind, base_url or _base_url(self._settings, kind), secrets)
        return None

    def _prompt_store(self, binding: PromptBinding) -> StoreBinding:
        if binding.integration != "generic_prompt_management":
            prefix = STORE_ALIASES.get(binding.integration, binding.integration)
            configured = self._bindings.get(prefix)
            if configured is None:
                kind = kind_of(prefix)
                how = kind.how_to_configure if kind else ""
                raise ConfigurationError(
                    f"The prompts entry for '{binding.prompt_id}' uses {binding.integration}, "
                    f"which is not configured: {how}."
                )
            return configured
        assert binding.api_base is not None  # checked when the config file was read
        store = GenericPromptStore(
            api_base=binding.api_base,
            api_key=binding.api_key.get_secret_value() if binding.api_key else None,
            query_params=binding.query_params,
            timeout=self._settings.store_timeout_seconds,
            client=self._client,
        )
        key = ("http", binding.api_base, tuple(sorted(binding.query_params.items())))
        return StoreBinding("http", store, self._remote, key)

    def _tenant(self, credentials: RequestCredentials) -> StoreBinding:
        kind = kind_of(credentials.kind)
        assert kind is not None
        base_url = _base_url(self._settings, kind)
        key = _credential_key(kind, base_url, credentials.secrets)
        binding = self._tenants.get(key)
        if binding is None:
            binding = self._tenants[key] = self._build(kind, base_url, credentials.secrets)
            if len(self._tenants) > _MAX_TENANT_STORES:
                # The store holds no connections of its own (the pool is shared): dropping
                # it needs no close. Its cache entries age out by size.
                self._tenants.popitem(last=False)
        else:
            self._tenants.move_to_end(key)
        return binding


def _fields(source: Settings | ModelEntry, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(source, name) for name in names)


def _complete(values: tuple[str | Secret | None, ...]) -> tuple[str, ...] | None:
    """The values as plain strings (secrets unwrapped); None when one is missing."""
    plain = tuple(v.get_secret_value() if isinstance(v, Secret) else v for v in values)
    if any(value is None for value in plain):
        return None
    return tuple(value for value in plain if value is not None)


def _base_url(settings: Settings, kind: StoreKind) -> str:
    assert kind.base_url_setting is not None  # every remote kind names one
    url: str = getattr(settings, kind.base_url_setting)
    return url


def _credential_key(kind: StoreKind, base_url: str, secrets: tuple[str, ...]) -> tuple[str, str]:
    # A one-way digest: cache keys are compared, never shown, but a digest keeps the secret
    # out of anything that might one day print them.
    material = "\0".join((base_url, *secrets)).encode()
    return (kind.prefix, hashlib.sha256(material).hexdigest())


def _stores_from_settings(specs: tuple[str, ...]) -> dict[str, PromptStore]:
    """``PROMPT_MIDDLEWARE_STORES``: ``prefix=package.module:factory`` items, each called once."""
    stores: dict[str, PromptStore] = {}
    for spec in specs:
        prefix, equals, target = spec.partition("=")
        module_name, colon, attribute = target.partition(":")
        where = f"PROMPT_MIDDLEWARE_STORES item {spec!r}"
        if not (equals and colon and prefix and module_name and attribute):
            raise ConfigurationError(f"{where} must read prefix=package.module:factory.")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(f"{where} cannot be imported: {exc}.") from None
        store = factory()
        if not isinstance(store, PromptStore):
            raise ConfigurationError(
                f"{where} made a {type(store).__name__}, which lacks the PromptStore methods "
                "get_prompt and aclose."
            )
        stores[prefix] = store
    return stores
