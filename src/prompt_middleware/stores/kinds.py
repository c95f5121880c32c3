"""One description per kind of store: everything the rest of the package knows about it.

The registry (which stores exist and how to build them), the settings (which environment
variables and model-list keys configure them), the request decoder (which field prefixes are
extensions) and the engine (which request fields carry credentials) all read
:data:`STORE_KINDS`. A new store is one module and one entry here (plus, when it takes keys,
the fields of ``Settings`` and ``ModelEntry`` the entry names; a test checks they exist).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

import httpx2

from prompt_middleware.stores.base import PromptStore
from prompt_middleware.stores.humanloop import HumanloopStore
from prompt_middleware.stores.langfuse import LangfuseStore

__all__ = [
    "FILE",
    "HUMANLOOP",
    "KNOWN_STORES",
    "LANGFUSE",
    "STORE_ALIASES",
    "STORE_KINDS",
    "RemoteStoreFactory",
    "StoreKind",
    "kind_of",
]


class RemoteStoreFactory(Protocol):
    """Builds a remote store; ``secrets`` come in the order of the kind's ``secret_settings``."""

    def __call__(
        self,
        *,
        base_url: str,
        secrets: tuple[str, ...],
        timeout: float,
        client: httpx2.AsyncClient,
    ) -> PromptStore: ...


@dataclass(frozen=True, slots=True)
class StoreKind:
    """A kind of store: its prefix and every name by which it is configured or addressed.

    ``base_url_setting`` and ``secret_settings`` are ``Settings`` fields (the store is
    configured when every secret is set); ``entry_base_url`` and ``entry_secrets`` are the
    ``ModelEntry`` fields that give one model-list entry its own store of this kind.
    """

    prefix: str
    how_to_configure: str
    aliases: tuple[str, ...] = ()
    #: ``Settings`` field -> the environment variables that set it, the first one set wins.
    environment: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    base_url_setting: str | None = None
    secret_settings: tuple[str, ...] = ()
    entry_base_url: str | None = None
    entry_secrets: tuple[str, ...] = ()
    #: ``litellm_params`` keys of a model-list entry -> the ``ModelEntry`` field each sets
    #: (LiteLLM spells some two ways; the field's own name wins when both are given).
    entry_keys: Mapping[str, str] = field(default_factory=dict)
    #: Request fields starting with this are extensions: taken out of the body, never sent.
    request_prefix: str | None = None
    #: Request fields that carry per-request credentials (all or none), in factory order.
    request_credentials: tuple[str, ...] = ()
    factory: RemoteStoreFactory | None = None


def _langfuse(
    *, base_url: str, secrets: tuple[str, ...], timeout: float, client: httpx2.AsyncClient
) -> PromptStore:
    public_key, secret_key = secrets
    return LangfuseStore(
        base_url=base_url,
        public_key=public_key,
        secret_key=secret_key,
        timeout=timeout,
        client=client,
    )


def _humanloop(
    *, base_url: str, secrets: tuple[str, ...], timeout: float, client: httpx2.AsyncClient
) -> PromptStore:
    (api_key,) = secrets
    return HumanloopStore(base_url=base_url, api_key=api_key, timeout=timeout, client=client)


# The local folder is always there: the registry builds it from PROMPT_MIDDLEWARE_PROMPTS_DIR.
FILE: Final = StoreKind(
    prefix="file",
    # LiteLLM names the local folder integration "dotprompt"; both prefixes mean this store.
    aliases=("dotprompt",),
    how_to_configure="set PROMPT_MIDDLEWARE_PROMPTS_DIR",
)
LANGFUSE: Final = StoreKind(
    prefix="langfuse",
    how_to_configure="set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (and LANGFUSE_BASE_URL)",
    # LANGFUSE_BASE_URL before LANGFUSE_HOST, as the Langfuse SDK reads them.
    environment={
        "langfuse_public_key": ("LANGFUSE_PUBLIC_KEY",),
        "langfuse_secret_key": ("LANGFUSE_SECRET_KEY",),
        "langfuse_base_url": ("LANGFUSE_BASE_URL", "LANGFUSE_HOST"),
    },
    base_url_setting="langfuse_base_url",
    secret_settings=("langfuse_public_key", "langfuse_secret_key"),
    entry_base_url="langfuse_host",
    entry_secrets=("langfuse_public_key", "langfuse_secret_key"),
    entry_keys={
        "langfuse_public_key": "langfuse_public_key",
        "langfuse_secret_key": "langfuse_secret_key",
        "langfuse_secret": "langfuse_secret_key",
        "langfuse_host": "langfuse_host",
    },
    request_prefix="langfuse_",
    request_credentials=("langfuse_public_key", "langfuse_secret_key"),
    factory=_langfuse,
)
HUMANLOOP: Final = StoreKind(
    prefix="humanloop",
    how_to_configure="set HUMANLOOP_API_KEY",
    environment={
        "humanloop_api_key": ("HUMANLOOP_API_KEY",),
        "humanloop_base_url": ("HUMANLOOP_BASE_URL",),
    },
    base_url_setting="humanloop_base_url",
    secret_settings=("humanloop_api_key",),
    entry_base_url="humanloop_base_url",
    entry_secrets=("humanloop_api_key",),
    entry_keys={
        "humanloop_api_key": "humanloop_api_key",
        "humanloop_base_url": "humanloop_base_url",
    },
    request_prefix="humanloop_",
    factory=_humanloop,
)

# In this order a model-list entry is given its own store: an entry holding keys of several
# kinds is bound to the first of them.
STORE_KINDS: Final = (FILE, HUMANLOOP, LANGFUSE)

_BY_NAME: Final = {name: kind for kind in STORE_KINDS for name in (kind.prefix, *kind.aliases)}
#: Alias -> the prefix it stands for.
STORE_ALIASES: Final = {alias: kind.prefix for kind in STORE_KINDS for alias in kind.aliases}
#: Prefixes that name a store even when it is not configured, so that a request for one is
#: a clear 400 rather than a model name the upstream does not know.
KNOWN_STORES: Final = frozenset(_BY_NAME)


def kind_of(prefix: str) -> StoreKind | None:
    """The kind a prefix or alias names; None for a store registered under its own prefix."""
    return _BY_NAME.get(prefix)
