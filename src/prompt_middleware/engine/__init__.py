"""The rewrite engine: request body bytes in, the body the upstream should get out.

decode -> resolve (model list, store, prompt through the cache) -> render -> encode. Every
rule of CONTRACT §2 and §3 lives here once; the ASGI middleware and the httpx transport are
thin doors onto :meth:`RewriteEngine.rewrite`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from typing import Any, Final
from urllib.parse import quote

import httpx
import msgspec
import structlog

from prompt_middleware.cache import CacheKey, CacheStatus, PromptCache
from prompt_middleware.errors import (
    InvalidPromptRequest,
    InvalidRequest,
    PromptNotFound,
    PromptStoreUnavailable,
    RequestError,
)
from prompt_middleware.observe import FetchOutcome, Observer
from prompt_middleware.parameters import CHAT_COMPLETION_PARAMETERS
from prompt_middleware.prompts import Prompt, PromptQuery
from prompt_middleware.registry import (
    STORE_ALIASES,
    LangfuseCredentials,
    StoreBinding,
    StoreRegistry,
)
from prompt_middleware.render import RenderOptions
from prompt_middleware.render_jinja import prepare_prompt
from prompt_middleware.request import (
    Field,
    RequestFields,
    decode_body,
    decode_field,
    decode_version,
    extension_fields,
)
from prompt_middleware.settings import ModelEntry, Settings
from prompt_middleware.stores.base import PromptStore

__all__ = ["RewriteEngine", "RewriteResult"]

logger = structlog.get_logger(__name__)

DEFAULT_LABEL: Final = "production"
_PROVIDER_PREFIX: Final = "openai/"
_CREDENTIAL_FIELDS: Final = frozenset({"langfuse_public_key", "langfuse_secret_key"})

_encode: Final = msgspec.json.Encoder().encode
_OPEN_BRACKET: Final = ord("[")
_MAX_REMEMBERED: Final = 1024
_MODEL: Final = Field("model", str)
_PROMPT_ID: Final = Field("prompt_id", str)
_PROMPT_VARIABLES: Final = Field("prompt_variables", dict[str, Any])
_is_blank: Final = re.compile(rb"[ \t\n\r]*").fullmatch
# Printable ASCII but "%" (the escape) and " " (a header value must not start or end with
# one, and a name may): everything else is percent-encoded.
_HEADER_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


class RewriteResult(msgspec.Struct, frozen=True, kw_only=True):
    """A rewritten request: the new body and what the response headers and log report."""

    body: bytes
    model: str | None
    entry: ModelEntry | None = None
    prompt: Prompt | None = None
    store: str | None = None
    cache_status: CacheStatus | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    #: True when the rewrite had to wait for the prompt store (a miss; or an expired prompt
    #: the policy does not serve while it refreshes in the background).
    waited: bool = False

    @property
    def response_headers(self) -> list[tuple[bytes, bytes]]:
        """The ``x-prompt-*`` headers of a managed request (none for an unmanaged one)."""
        return list(self.headers)


class _Target:
    """The store and prompt a request names, and whether the prompt's config applies."""

    __slots__ = (
        "binding",
        "cache_key",
        "query",
        "store_header",
        "use_prompt_model",
        "use_prompt_params",
    )

    def __init__(
        self,
        binding: StoreBinding,
        query: PromptQuery,
        *,
        use_prompt_model: bool = True,
        use_prompt_params: bool = True,
    ) -> None:
        self.binding = binding
        self.query = query
        self.cache_key: CacheKey = (binding.cache_key, query)
        self.store_header = (b"x-prompt-store", _header_value(binding.prefix))
        self.use_prompt_model = use_prompt_model
        self.use_prompt_params = use_prompt_params


class _Plan:
    """What a cached prompt gives every request, worked out once per prompt version."""

    __slots__ = ("headers", "model", "params", "prepared", "prompt")

    def __init__(self, prompt: Prompt) -> None:
        self.prompt = prompt
        self.prepared = prepare_prompt(prompt)
        config = prompt.config if isinstance(prompt.config, dict) else {}
        model = config.get("model")
        self.model = model.removeprefix(_PROVIDER_PREFIX) if isinstance(model, str) else None
        self.params = tuple(
            (key, value) for key, value in config.items() if key in CHAT_COMPLETION_PARAMETERS
        )
        self.headers = (
            (b"x-prompt-name", _header_value(prompt.name)),
            (b"x-prompt-version", _header_value(str(prompt.version))),
        )


class RewriteEngine:
    """Rewrites chat requests that name managed prompts; shared by every door."""

    def __init__(
        self,
        settings: Settings,
        *,
        stores: Mapping[str, PromptStore] | None = None,
        cache: PromptCache | None = None,
        http_client: httpx.AsyncClient | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._settings = settings
        self._observer = observer
        self._render_options: RenderOptions = settings.render_options
        self._cache = (
            cache if cache is not None else PromptCache(max_entries=settings.cache_max_entries)
        )
        self._entries = {entry.model_name: entry for entry in settings.model_list}
        self._stores = StoreRegistry(settings, stores=stores, http_client=http_client)
        self._prompt_wins = settings.param_precedence == "prompt"
        # Plans are keyed by the identity of the cached prompt they were made from: a new
        # version is a new object, so it gets a new plan, and no prompt needs to be hashable.
        self._plans: dict[int, _Plan] = {}
        self._max_plans = 2 * settings.cache_max_entries + 16
        # A service sends a handful of model names and prompt names: each is worked out once.
        # Least recently used ones go past _MAX_REMEMBERED, so made-up names cannot grow
        # memory. Targets with per-request credentials are never remembered.
        self._store_prefix_of = lru_cache(maxsize=_MAX_REMEMBERED)(self._split_store_prefix)
        self._remembered_target = lru_cache(maxsize=_MAX_REMEMBERED)(self._new_target)

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def cache(self) -> PromptCache:
        return self._cache

    async def rewrite(self, body: bytes) -> RewriteResult | None:
        """The rewritten request, or None when the body must go on unchanged.

        Raises a :class:`RequestError` subclass for anything the client must fix or the
        store could not serve.
        """
        fields = decode_body(body)
        model: str | None = _MODEL(fields)
        entry = self._entries.get(model) if model is not None and self._entries else None
        extensions, prefixed = extension_fields(fields)
        prefix, bare_model = self._store_prefix_of(entry.model if entry else model)
        if entry is None and prefix is None and not extensions and not prefixed:
            return None
        if entry is not None and bare_model is not None:
            bare_model = bare_model.removeprefix(_PROVIDER_PREFIX)

        prompt_id: str | None = _PROMPT_ID(fields)
        if prompt_id is None and entry is not None:
            prompt_id = entry.prompt_id
        output: dict[str, Any] = dict(fields)
        for name in extensions:
            del output[name]
        for name in prefixed:
            del output[name]
        if entry is not None:
            for key, value in entry.params.items():
                output.setdefault(key, value)

        if prompt_id is None:
            self._refuse_prompt_fields_without_prompt(fields)
            if bare_model is not None:
                output["model"] = bare_model
            return RewriteResult(body=_encode(output), model=bare_model, entry=entry)

        credentials = (
            self._request_credentials(fields)
            if prefixed and any(name.startswith("langfuse_") for name in prefixed)
            else None
        )
        target = self._target(prefix, entry, prompt_id, fields, credentials)
        binding = target.binding
        cache_key, policy = target.cache_key, binding.policy
        prompt = self._cache.get_fresh(cache_key)
        status, waited = CacheStatus.HIT, False
        if prompt is None:
            fetch = self._fetcher(binding, target.query)
            prompt, status = self._cache.serve_stale(cache_key, fetch, policy), CacheStatus.STALE
            if prompt is None:  # only now does the request wait for the store
                prompt, status = await self._cache.get(cache_key, fetch, policy)
                waited = True
        plan = self._plan(prompt)
        rendered = plan.prepared.render(
            self._variables(fields),
            lambda: _client_messages(fields),
            self._render_options,
        )
        if rendered.missing_variables:
            logger.warning(
                "prompt_variables_missing",
                prompt=prompt.name,
                version=prompt.version,
                variables=list(rendered.missing_variables),
            )

        use_prompt_model = target.use_prompt_model and plan.model is not None
        final_model = plan.model if use_prompt_model else bare_model
        if final_model is not None:
            final_model = final_model.removeprefix(_PROVIDER_PREFIX)
            output["model"] = final_model
        output["messages"] = rendered.messages
        if target.use_prompt_params:
            if self._prompt_wins:
                output.update(plan.params)
            else:
                for name, value in plan.params:
                    if name not in fields:
                        output[name] = value
        return RewriteResult(
            body=_encode(output),
            model=final_model,
            entry=entry,
            prompt=prompt,
            store=binding.prefix,
            cache_status=status,
            headers=(*plan.headers, target.store_header, _cache_header(status)),
            waited=waited,
        )

    def _plan(self, prompt: Prompt) -> _Plan:
        plan = self._plans.get(id(prompt))
        if plan is None or plan.prompt is not prompt:
            if len(self._plans) >= self._max_plans:
                self._plans.clear()  # prompts the cache no longer holds; rebuilt on demand
            plan = self._plans[id(prompt)] = _Plan(prompt)
        return plan

    async def prewarm(self) -> None:
        """Fetch the prompts of ``PROMPT_MIDDLEWARE_PREWARM`` into the cache."""
        binding = self._stores.resolve(None)
        queries = [_parse_prewarm(item) for item in self._settings.prewarm]
        results = await asyncio.gather(
            *(self._get_prompt(binding, query) for query in queries), return_exceptions=True
        )
        for query, result in zip(queries, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("prompt_prewarm_failed", prompt=query.name, error=str(result))

    async def aclose(self) -> None:
        """Stop background refreshes and close every store's connections."""
        await self._cache.aclose()
        await self._stores.aclose()

    def _split_store_prefix(self, model: str | None) -> tuple[str | None, str | None]:
        if model is None:
            return None, None
        head, slash, rest = model.partition("/")
        if slash and head in self._stores.prefixes:
            return STORE_ALIASES.get(head, head), rest.removeprefix(_PROVIDER_PREFIX)
        return None, model

    def _target(
        self,
        prefix: str | None,
        entry: ModelEntry | None,
        prompt_id: str,
        fields: RequestFields,
        credentials: LangfuseCredentials | None,
    ) -> _Target:
        """Which prompt of which store the request names."""
        label = version = None
        if "prompt_label" in fields or "prompt_version" in fields:
            label, version = self._pinned(fields)
        model_name = entry.model_name if entry else None
        if credentials is None:
            return self._remembered_target(prefix, model_name, prompt_id, label, version)
        return self._new_target(prefix, model_name, prompt_id, label, version, credentials)

    def _new_target(
        self,
        prefix: str | None,
        model_name: str | None,
        prompt_id: str,
        label: str | None,
        version: int | None,
        credentials: LangfuseCredentials | None = None,
    ) -> _Target:
        entry = self._entries.get(model_name) if model_name is not None else None
        query = self._query(prompt_id, label, version, entry)
        bound = self._stores.for_prompt(prompt_id) if prefix is None else None
        if bound is None:
            return _Target(self._stores.resolve(prefix, entry, credentials), query)
        binding, options = bound
        return _Target(
            binding,
            query,
            use_prompt_model=not options.ignore_prompt_manager_model,
            use_prompt_params=not options.ignore_prompt_manager_optional_params,
        )

    @staticmethod
    def _pinned(fields: RequestFields) -> tuple[str | None, int | None]:
        label: str | None = decode_field(fields, "prompt_label", str)
        version = decode_version(fields)
        if label is not None and version is not None:
            raise InvalidPromptRequest(
                "Give prompt_label or prompt_version, not both: a version is already one "
                "exact prompt.",
                param="prompt_version",
            )
        return label, version

    def _query(
        self, prompt_id: str, label: str | None, version: int | None, entry: ModelEntry | None
    ) -> PromptQuery:
        if not prompt_id:
            raise InvalidPromptRequest("'prompt_id' must not be empty.", param="prompt_id")
        if label is None and version is None and entry is not None:
            label, version = entry.prompt_label, entry.prompt_version
        if version is not None:
            return PromptQuery(prompt_id, version=version)
        return PromptQuery(prompt_id, label=label or DEFAULT_LABEL)

    def _variables(self, fields: RequestFields) -> dict[str, Any]:
        """``prompt_variables`` within the limits of the settings."""
        raw = fields.get("prompt_variables")
        if raw is None:
            return {}
        settings = self._settings
        if len(raw) > settings.max_variables_bytes:
            raise InvalidRequest(
                f"'prompt_variables' is larger than {settings.max_variables_bytes} bytes "
                "(PROMPT_MIDDLEWARE_MAX_VARIABLES_BYTES).",
                param="prompt_variables",
            )
        variables: dict[str, Any] = _PROMPT_VARIABLES(fields) or {}
        if len(variables) > settings.max_variables:
            raise InvalidRequest(
                f"'prompt_variables' has more than {settings.max_variables} entries "
                "(PROMPT_MIDDLEWARE_MAX_VARIABLES).",
                param="prompt_variables",
            )
        limit = settings.max_variables_depth
        if _may_nest_deeper(raw, limit) and _depth(variables, limit) > limit:
            raise InvalidRequest(
                f"'prompt_variables' is nested more than {settings.max_variables_depth} levels "
                "deep (PROMPT_MIDDLEWARE_MAX_VARIABLES_DEPTH).",
                param="prompt_variables",
            )
        return variables

    def _request_credentials(self, fields: RequestFields) -> LangfuseCredentials | None:
        """Per-request Langfuse keys, honoured only when the settings allow them."""
        public_key: str | None = decode_field(fields, "langfuse_public_key", str)
        secret_key: str | None = decode_field(fields, "langfuse_secret_key", str)
        ignored = sorted(
            name
            for name in fields
            if name.startswith("langfuse_") and name not in _CREDENTIAL_FIELDS
        )
        if ignored:
            # The host is configuration, never request data: a client must not be able to
            # send our credentials, or anyone's, to a host of its choosing.
            logger.warning("request_fields_ignored", fields=ignored)
        if public_key is None and secret_key is None:
            return None
        if not self._settings.allow_request_credentials:
            logger.warning(
                "request_credentials_ignored",
                reason="PROMPT_MIDDLEWARE_ALLOW_REQUEST_CREDENTIALS is not set",
            )
            return None
        if public_key is None or secret_key is None:
            raise InvalidRequest(
                "langfuse_public_key and langfuse_secret_key must be given together.",
                param="langfuse_secret_key" if secret_key is None else "langfuse_public_key",
            )
        return LangfuseCredentials(public_key, secret_key)

    @staticmethod
    def _refuse_prompt_fields_without_prompt(fields: RequestFields) -> None:
        orphans = sorted(
            n for n in ("prompt_variables", "prompt_label", "prompt_version") if n in fields
        )
        if orphans:
            raise InvalidPromptRequest(
                f"{', '.join(orphans)} given without prompt_id: name the prompt to use.",
                param="prompt_id",
            )

    def _get_prompt(
        self, binding: StoreBinding, query: PromptQuery
    ) -> Awaitable[tuple[Prompt, CacheStatus]]:
        return self._cache.get(
            (binding.cache_key, query), self._fetcher(binding, query), binding.policy
        )

    def _fetcher(
        self, binding: StoreBinding, query: PromptQuery
    ) -> Callable[[], Awaitable[Prompt]]:
        return lambda: self._fetch(binding, query)

    async def _fetch(self, binding: StoreBinding, query: PromptQuery) -> Prompt:
        started = time.perf_counter()
        outcome: FetchOutcome = "error"
        try:
            async with asyncio.timeout(self._settings.store_timeout_seconds):
                prompt = await binding.store.get_prompt(query)
            outcome = "ok"
            return prompt
        except PromptNotFound:
            outcome = "not_found"
            raise
        except RequestError:
            raise
        except TimeoutError:
            raise PromptStoreUnavailable(
                f"The prompt store '{binding.prefix}' did not answer within "
                f"{self._settings.store_timeout_seconds:g} s "
                "(PROMPT_MIDDLEWARE_STORE_TIMEOUT_SECONDS)."
            ) from None
        except Exception as exc:
            logger.exception("prompt_store_error", store=binding.prefix, prompt=query.name)
            raise PromptStoreUnavailable(
                f"The prompt store '{binding.prefix}' failed: {type(exc).__name__}."
            ) from exc
        finally:
            if self._observer is not None:
                self._observer.store_fetch(binding.prefix, outcome, time.perf_counter() - started)


def _client_messages(fields: RequestFields) -> list[msgspec.Raw] | None:
    """The request's own conversation, as one item standing for all of its messages.

    The item is the bytes between the client's ``[`` and ``]``: the encoder writes a
    ``Raw`` verbatim, so in our messages array those bytes become the client's messages,
    in order, copied as sent. The conversation (most of a chat request) is neither split
    into items nor re-encoded.
    """
    raw = fields.get("messages")
    if raw is None:
        return None
    # The body decoder checked that the value is JSON: its first byte says which kind.
    view = memoryview(raw)
    if view[0] == _OPEN_BRACKET:
        items = view[1:-1]
        return [] if _is_blank(items) else [msgspec.Raw(items)]
    if bytes(view) == b"null":
        return None
    raise InvalidRequest("'messages' must be a JSON array.", param="messages")


def _may_nest_deeper(raw: msgspec.Raw, limit: int) -> bool:
    # JSON nests no deeper than it has opening brackets (those inside strings only add to
    # the count), and has two bytes per level at least: both spare the walk for the usual
    # flat variables.
    if len(raw) < 2 * (limit + 1):
        return False
    text = bytes(raw)
    return text.count(b"{") + text.count(b"[") > limit


def _depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests, counted no further than ``limit + 1``."""
    depth, level = 0, [value]
    while level and depth <= limit:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
    return depth


def _parse_prewarm(item: str) -> PromptQuery:
    name, _, label = item.partition("@")
    return PromptQuery(name, label=label or DEFAULT_LABEL)


def _cache_header(status: CacheStatus) -> tuple[bytes, bytes]:
    return _CACHE_HIT_HEADER if status is CacheStatus.HIT else _CACHE_HEADERS[status.value]


_CACHE_HEADERS: Final = {
    status.value: (b"x-prompt-cache", status.value.encode()) for status in CacheStatus
}
_CACHE_HIT_HEADER: Final = _CACHE_HEADERS[CacheStatus.HIT.value]


@lru_cache(maxsize=4096)
def _header_value(value: str) -> bytes:
    # Prompt names come from client input: no CR/LF (header splitting), no non-ASCII.
    return quote(value, safe=_HEADER_SAFE).encode("ascii")
