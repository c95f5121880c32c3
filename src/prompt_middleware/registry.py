"""Which store serves a managed request, built once from the settings.

The registry owns every store and the one HTTP connection pool the remote stores share. It
decides, per request, between the store a prefix names, a model-list entry's own Langfuse
credentials, and (only when ``PROMPT_MIDDLEWARE_ALLOW_REQUEST_CREDENTIALS`` is set) a tenant's
per-request Langfuse keys. The Langfuse host always comes from the settings or the config
file, never from a request.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Final

import httpx

from prompt_middleware.cache import CachePolicy
from prompt_middleware.errors import ConfigurationError, InvalidPromptRequest
from prompt_middleware.settings import ModelEntry, PromptBinding, Settings
from prompt_middleware.stores.base import PromptStore
from prompt_middleware.stores.generic import GenericPromptStore
from prompt_middleware.stores.humanloop import HumanloopStore
from prompt_middleware.stores.langfuse import LangfuseStore
from prompt_middleware.stores.local import LocalPromptStore

__all__ = ["KNOWN_STORES", "STORE_ALIASES", "StoreBinding", "StoreRegistry"]

# LiteLLM names the local folder integration "dotprompt"; both prefixes mean the same store.
STORE_ALIASES: Final = {"dotprompt": "file"}
# Prefixes that name a store even when it is not configured, so that a request for one is a
# clear 400 rather than a model name the upstream does not know.
KNOWN_STORES: Final = frozenset({"langfuse", "file", "dotprompt", "humanloop"})
# Files are edited in place: the folder store re-reads a changed file within half a second,
# and the cache holds its prompts no longer, so an edit shows within one second.
_FILE_TTL_SECONDS: Final = 0.5
# Per-request credentials create a store per tenant; bound them so that a stream of made-up
# keys cannot grow memory without end. A store is only a few objects: the pool is shared.
_MAX_TENANT_STORES: Final = 256
_HOW_TO_CONFIGURE: Final = {
    "langfuse": "set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (and LANGFUSE_BASE_URL)",
    "humanloop": "set HUMANLOOP_API_KEY",
}


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
class LangfuseCredentials:
    public_key: str
    secret_key: str


class StoreRegistry:
    """The stores of one engine, and the rules that pick one for a request."""

    def __init__(
        self,
        settings: Settings,
        *,
        stores: Mapping[str, PromptStore] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._settings = settings
        self._remote = CachePolicy(
            ttl_seconds=settings.cache_ttl_seconds,
            max_stale_seconds=settings.cache_max_stale_seconds,
        )
        self._files = CachePolicy(
            ttl_seconds=min(settings.cache_ttl_seconds, _FILE_TTL_SECONDS),
            max_stale_seconds=settings.cache_max_stale_seconds,
            versions_are_immutable=False,
            revalidate_in_background=False,
        )
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            headers={"accept": "application/json"},
        )
        self._bindings: dict[str, StoreBinding] = {
            "file": StoreBinding(
                "file", LocalPromptStore(settings.prompts_dir), self._files, "file"
            )
        }
        if settings.langfuse_public_key is not None and settings.langfuse_secret_key is not None:
            credentials = LangfuseCredentials(
                settings.langfuse_public_key, settings.langfuse_secret_key.get_secret_value()
            )
            self._bindings["langfuse"] = self._langfuse(settings.langfuse_base_url, credentials)
        if settings.humanloop_api_key is not None:
            self._bindings["humanloop"] = self._humanloop(
                settings.humanloop_base_url, settings.humanloop_api_key.get_secret_value()
            )
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
        self.prefixes: frozenset[str] = (
            frozenset(self._bindings) | KNOWN_STORES | frozenset(STORE_ALIASES)
        )

    def resolve(
        self,
        prefix: str | None,
        entry: ModelEntry | None = None,
        credentials: LangfuseCredentials | None = None,
    ) -> StoreBinding:
        """The store for a request: ``prefix``, else the default store; 400 if unconfigured."""
        if prefix is None:
            default = self._settings.resolved_default_store
            prefix = STORE_ALIASES.get(default, default)
        if prefix == "langfuse" and credentials is not None:
            return self._tenant(credentials)
        if entry is not None and entry.model_name in self._entry_bindings:
            entry_binding = self._entry_bindings[entry.model_name]
            if entry_binding.prefix == prefix:
                return entry_binding
        binding = self._bindings.get(prefix)
        if binding is None:
            how = _HOW_TO_CONFIGURE.get(prefix, "register a store under this prefix")
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

    def _langfuse(self, base_url: str, credentials: LangfuseCredentials) -> StoreBinding:
        store = LangfuseStore(
            base_url=base_url,
            public_key=credentials.public_key,
            secret_key=credentials.secret_key,
            timeout=self._settings.store_timeout_seconds,
            client=self._client,
        )
        return StoreBinding("langfuse", store, self._remote, _credential_key(base_url, credentials))

    def _humanloop(self, base_url: str, api_key: str) -> StoreBinding:
        store = HumanloopStore(
            base_url=base_url,
            api_key=api_key,
            timeout=self._settings.store_timeout_seconds,
            client=self._client,
        )
        digest = hashlib.sha256(f"{base_url}\0{api_key}".encode()).hexdigest()
        return StoreBinding("humanloop", store, self._remote, ("humanloop", digest))

    def _entry_store(self, entry: ModelEntry) -> StoreBinding | None:
        if entry.humanloop_api_key is not None:
            base_url = entry.humanloop_base_url or self._settings.humanloop_base_url
            return self._humanloop(base_url, entry.humanloop_api_key.get_secret_value())
        return self._entry_langfuse(entry)

    def _prompt_store(self, binding: PromptBinding) -> StoreBinding:
        if binding.integration != "generic_prompt_management":
            prefix = STORE_ALIASES.get(binding.integration, binding.integration)
            configured = self._bindings.get(prefix)
            if configured is None:
                how = _HOW_TO_CONFIGURE.get(prefix, "")
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

    def _entry_langfuse(self, entry: ModelEntry) -> StoreBinding | None:
        if entry.langfuse_public_key is None and entry.langfuse_secret_key is None:
            return None
        public_key = entry.langfuse_public_key or self._settings.langfuse_public_key
        secret = entry.langfuse_secret_key or self._settings.langfuse_secret_key
        if public_key is None or secret is None:
            return None
        base_url = entry.langfuse_host or self._settings.langfuse_base_url
        return self._langfuse(base_url, LangfuseCredentials(public_key, secret.get_secret_value()))

    def _tenant(self, credentials: LangfuseCredentials) -> StoreBinding:
        base_url = self._settings.langfuse_base_url
        key = _credential_key(base_url, credentials)
        binding = self._tenants.get(key)
        if binding is None:
            binding = self._tenants[key] = self._langfuse(base_url, credentials)
            if len(self._tenants) > _MAX_TENANT_STORES:
                # The store holds no connections of its own (the pool is shared): dropping
                # it needs no close. Its cache entries age out by size.
                self._tenants.popitem(last=False)
        else:
            self._tenants.move_to_end(key)
        return binding


def _credential_key(base_url: str, credentials: LangfuseCredentials) -> tuple[str, str]:
    # A one-way digest: cache keys are compared, never shown, but a digest keeps the secret
    # out of anything that might one day print them.
    material = f"{base_url}\0{credentials.public_key}\0{credentials.secret_key}".encode()
    return ("langfuse", hashlib.sha256(material).hexdigest())


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
