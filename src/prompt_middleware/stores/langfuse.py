"""Langfuse as a prompt store: ``GET /api/public/v2/prompts/{name}``, fully async.

Why not the SDK's ``Langfuse.get_prompt``: it is synchronous (a blocking httpx call, with
``backoff`` retries that sleep the calling thread), so on the event loop it would stall every
request in flight; and it keeps its own TTL cache with background refresh threads, which must
not be stacked on ours (two TTLs, two stale policies, fetch counts nobody can reason about).
The wire format is small and documented (Langfuse's public API reference), so one httpx2
request and a few msgspec structs do the job.

Statuses and httpx2 errors become PromptNotFound / PromptStoreUnavailable as ``_http.py``
says (one deadline, a small retry on 429, 5xx and connect errors, no redirects); a 200 whose
body is not a Langfuse prompt is PromptStoreUnavailable.
"""

from __future__ import annotations

import base64
from typing import Any, Final

import httpx2
import msgspec

from prompt_middleware.errors import PromptNotFound
from prompt_middleware.prompts import (
    DEFAULT_LABEL,
    ChatMessage,
    Placeholder,
    Prompt,
    PromptMessage,
    PromptQuery,
)
from prompt_middleware.stores._http import HttpService, ServiceText, path_segment
from prompt_middleware.stores._wire import InvalidPrompt

__all__ = ["LangfuseStore"]

_PROMPTS_PATH: Final = "/api/public/v2/prompts/"


# --- the wire format (the API reference's ``Prompt`` schema) ---------------------------------


class _Message(msgspec.Struct, frozen=True):
    """A ``ChatMessage`` (role, content, type "chatmessage" or absent) or a
    ``PlaceholderMessage`` (type "placeholder", name): one struct, told apart by ``type``
    because the chat message's ``type`` is optional and so cannot be a msgspec tag."""

    type: str | None = None
    role: str | None = None
    content: str | None = None
    name: str | None = None


class _TextPrompt(msgspec.Struct, frozen=True, tag_field="type", tag="text"):
    name: str
    version: int
    prompt: str
    config: Any = None
    labels: tuple[str, ...] = ()


class _ChatPrompt(msgspec.Struct, frozen=True, tag_field="type", tag="chat"):
    name: str
    version: int
    prompt: tuple[_Message, ...]
    config: Any = None
    labels: tuple[str, ...] = ()


_decode_prompt = msgspec.json.Decoder(_TextPrompt | _ChatPrompt).decode


def _message(raw: _Message) -> PromptMessage:
    if raw.type == "placeholder":
        if raw.name is None:
            raise InvalidPrompt("a placeholder message has no `name`")
        return Placeholder(name=raw.name)
    if raw.type not in (None, "chatmessage"):
        raise InvalidPrompt(f"a chat message has the unknown type {raw.type!r}")
    if raw.role is None or raw.content is None:
        raise InvalidPrompt("a chat message lacks `role` or `content`")
    return ChatMessage(role=raw.role, content=raw.content)


def _to_prompt(wire: _TextPrompt | _ChatPrompt) -> Prompt:
    # Langfuse sends config {} when none was set; null is mapped to the same.
    config = {} if wire.config is None else wire.config
    if isinstance(wire, _TextPrompt):
        return Prompt(
            name=wire.name,
            version=wire.version,
            type="text",
            prompt=wire.prompt,
            config=config,
            labels=wire.labels,
        )
    messages = tuple(_message(m) for m in wire.prompt)
    return Prompt(
        name=wire.name,
        version=wire.version,
        type="chat",
        prompt=messages,
        config=config,
        labels=wire.labels,
    )


_TEXT: Final = ServiceText(
    name="Langfuse",
    base_url="The Langfuse base URL",
    example="https://cloud.langfuse.com",
    credentials="set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY instead",
    check_base_url="check LANGFUSE_BASE_URL",
    refused="the credentials",
    check_credentials="check the public and secret key (LANGFUSE_PUBLIC_KEY, "
    "LANGFUSE_SECRET_KEY or the model-list entry's) and that the base URL is the host of "
    "their project",
    log_event="langfuse.fetch",
)


class LangfuseStore:
    """Prompts from Langfuse's public API, with Basic auth, a deadline and a small retry.

    ``timeout`` bounds the whole call, retries and backoff included. ``retries`` extra
    attempts are made on connect errors, 429 and 5xx only, after ``retry_backoff`` seconds
    (doubling); a retry that could not finish before the deadline is not started. The cache
    in front of the store serves a stale copy when this fails, so failing fast wins over
    trying hard.

    ``client`` is an injected ``httpx2.AsyncClient`` (tests, or a shared pool); it is not
    closed by :meth:`aclose`. Without it the store creates its own pooled client on first
    use, inside the running event loop, and closes it in :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        public_key: str,
        secret_key: str,
        timeout: float = 5.0,
        retries: int = 1,
        retry_backoff: float = 0.05,
        client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._http = HttpService(
            _TEXT,
            base_url=base_url,
            timeout=timeout,
            retries=retries,
            retry_backoff=retry_backoff,
            client=client,
        )
        self._prefix = self._http.base + _PROMPTS_PATH
        # Basic auth, built once: the header is the same on every request.
        token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode("ascii")
        self._headers = {"accept": "application/json", "authorization": f"Basic {token}"}

    def __repr__(self) -> str:
        return f"LangfuseStore(host={self._http.host!r})"

    async def aclose(self) -> None:
        """Close the store's own client; an injected client is left to its owner."""
        await self._http.aclose()

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        if not query.name:
            # An empty name would address the list endpoint, not a prompt.
            raise PromptNotFound("The prompt name is empty", param="prompt_id")
        params = (
            {"version": str(query.version)}
            if query.version is not None
            else {"label": query.label or DEFAULT_LABEL}
        )
        request = self._http.client().build_request(
            "GET",
            self._prefix + path_segment(query.name),
            params=params,
            headers=self._headers,
            timeout=self._http.timeout,
        )
        what = f"prompt {query.describe()}"
        response = await self._http.send(
            request, what, prompt=query.name, label=params.get("label"), version=query.version
        )
        if response.status_code != 200:
            self._http.raise_for_status(
                response, what, not_found=f"Langfuse has no prompt {query.describe()}"
            )
        try:
            return _to_prompt(_decode_prompt(response.content))
        except (msgspec.DecodeError, InvalidPrompt) as exc:
            raise self._http.invalid(query.describe(), exc) from exc
