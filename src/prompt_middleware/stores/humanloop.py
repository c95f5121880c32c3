"""Humanloop as a prompt store, against its v5 API (Humanloop's API reference).

Which endpoint. A ``prompt_id`` that looks like a Humanloop prompt id (``pr_`` followed by at
least 12 letters or digits, as in ``pr_30gco7dx6JDq4200GVOHa``) is fetched with
``GET {base}/prompts/{id}``, as LiteLLM's integration does. Anything else is a path
(``folder/name``, ``Personal Projects/Coding Assistant``): ``/prompts/{id}`` does not take
paths, so it goes to Humanloop's get-by-path call, ``POST {base}/files/retrieve-by-path`` with
``{"path": ...}``, which answers any kind of file; one that is not a prompt is reported as not
found. Both take the same ``environment`` query parameter and answer a ``PromptResponse``.

Which version. ``PromptQuery.label`` is a Humanloop environment name: ``environment=<label>``.
No label, and ``production`` (the middleware's default label, so what a request without
``prompt_label`` asks for), send no ``environment``: Humanloop then answers the version
deployed to the organisation's default environment, which is ``production`` unless the
organisation renamed it. ``PromptQuery.version`` is an integer and Humanloop versions are ids
(``prv_...``), so a version is refused with a 400 that says to deploy the version to an
environment and ask for that. (LiteLLM sends neither, and so always gets the default.)

The mapping onto :class:`~prompt_middleware.prompts.Prompt`:

* ``template`` a string -> a text prompt; a list of messages -> a chat prompt of
  ``role``/``content``. Content given as parts has its text parts joined (as LiteLLM flattens
  them); any other part (an image) makes the prompt invalid. ``null`` content is ``""``. Other
  message keys (``name``, ``tool_call_id``, ``tool_calls``, ``thinking``) are dropped.
* ``version`` = ``version_id``; ``labels`` = the names of the environments it is deployed to;
  ``name`` = the ``prompt_id`` asked for.
* ``config`` = ``{"model": model, **parameters}``: ``temperature``, ``top_p``, ``stop``,
  ``presence_penalty``, ``frequency_penalty``, ``seed``, ``response_format``,
  ``reasoning_effort``, ``max_tokens``, then ``tools``, on top of the ``other`` object
  (provider extras; only its chat-completions parameters are ever sent). ``null`` means unset
  and is left out; so is ``max_tokens: -1`` (Humanloop's "compute from the prompt length",
  which no OpenAI-compatible endpoint accepts), an integer ``reasoning_effort`` (Anthropic's
  token budget, not an OpenAI value) and ``null`` keys inside ``response_format``. ``tools``
  (Humanloop's ``{name, description, parameters, strict}``) and ``linked_tools`` become OpenAI
  tool objects ``{"type": "function", "function": {...}}``; none at all means no ``tools``.
* ``template_language: jinja`` becomes the prompt's ``template_language``: rendered by the
  sandboxed Jinja renderer the local folder's ``.prompt`` files use
  (:mod:`prompt_middleware.jinja`), each message on its own. A template whose only Jinja is
  ``{{ name }}`` takes the plain ``{{variable}}`` substitution (an unknown variable written as
  nothing, as Jinja does); one that does not compile, or reaches for what the sandbox
  forbids, is an invalid prompt.

Statuses and httpx2 errors become PromptNotFound / PromptStoreUnavailable as ``_http.py``
says; besides, a path that is not a prompt is PromptNotFound, and a ``PromptQuery.version``
is InvalidPromptRequest (param ``prompt_version``) without a request.
"""

from __future__ import annotations

import re
from typing import Any, Final

import httpx2
import msgspec
import structlog

from prompt_middleware.errors import (
    ConfigurationError,
    InvalidPromptRequest,
    PromptNotFound,
)
from prompt_middleware.jinja import TemplateInvalid, compile_jinja, is_plain
from prompt_middleware.prompts import (
    DEFAULT_LABEL,
    ChatMessage,
    Prompt,
    PromptQuery,
    TemplateLanguage,
)
from prompt_middleware.stores._http import HttpService, ServiceText, path_segment
from prompt_middleware.stores._wire import InvalidPrompt, WireMessage, text_content

__all__ = ["HumanloopStore"]

logger = structlog.get_logger(__name__)

DEFAULT_BASE_URL: Final = "https://api.humanloop.com/v5"
_PROMPTS_PATH: Final = "/prompts/"
_BY_PATH: Final = "/files/retrieve-by-path"
_PROMPT_ID: Final = re.compile(r"pr_[A-Za-z0-9]{12,}")
# The label a request without prompt_label arrives with: Humanloop's default environment.
# Sent as they are when not null; max_tokens, reasoning_effort and response_format need care.
_PLAIN_PARAMETERS: Final = (
    "temperature",
    "top_p",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
)


# --- the wire format (the SDK's PromptResponse, the fields read here) -----------------------


class _Tool(msgspec.Struct, frozen=True):
    """A ``ToolFunction`` or a ``LinkedToolResponse`` (which adds ``id``, ``version_id``)."""

    name: str
    description: str | None = None
    parameters: Any = None
    strict: bool | None = None


class _Environment(msgspec.Struct, frozen=True):
    name: str


class _PromptResponse(msgspec.Struct, frozen=True):
    version_id: str
    template: str | tuple[WireMessage, ...] | None = None
    # retrieve-by-path answers any file; a prompt says "prompt" (or, older, nothing).
    type: str | None = None
    model: str | None = None
    template_language: str | None = None
    max_tokens: int | None = None
    temperature: Any = None
    top_p: Any = None
    stop: Any = None
    presence_penalty: Any = None
    frequency_penalty: Any = None
    seed: Any = None
    response_format: Any = None
    reasoning_effort: Any = None
    tools: tuple[_Tool, ...] | None = None
    linked_tools: tuple[_Tool, ...] | None = None
    other: dict[str, Any] | None = None
    environments: tuple[_Environment, ...] | None = None


_decode_prompt = msgspec.json.Decoder(_PromptResponse).decode


class _NotAPrompt(ValueError):
    pass


def _tool(tool: _Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _config(wire: _PromptResponse) -> dict[str, Any]:
    # A fresh dict per fetch: nothing in it is shared with another Prompt.
    config: dict[str, Any] = {k: v for k, v in (wire.other or {}).items() if v is not None}
    if wire.model is not None:
        config["model"] = wire.model
    for key in _PLAIN_PARAMETERS:
        value = getattr(wire, key)
        if value is not None:
            config[key] = value
    if wire.max_tokens is not None and wire.max_tokens != -1:
        config["max_tokens"] = wire.max_tokens
    if isinstance(wire.reasoning_effort, str):
        config["reasoning_effort"] = wire.reasoning_effort
    if isinstance(wire.response_format, dict):
        config["response_format"] = {k: v for k, v in wire.response_format.items() if v is not None}
    elif wire.response_format is not None:
        config["response_format"] = wire.response_format
    tools = [_tool(t) for t in (*(wire.tools or ()), *(wire.linked_tools or ()))]
    if tools:
        config["tools"] = tools
    return config


def _to_prompt(wire: _PromptResponse, name: str) -> Prompt:
    if wire.type not in (None, "prompt"):
        raise _NotAPrompt(wire.type)
    if wire.template is None:
        raise InvalidPrompt("it has no `template`")
    prompt: str | tuple[ChatMessage, ...]
    if isinstance(wire.template, str):
        prompt = wire.template
        texts = [prompt]
    else:
        prompt = tuple(ChatMessage(role=m.role, content=text_content(m)) for m in wire.template)
        texts = [m.content for m in prompt]
    language: TemplateLanguage = "langfuse"
    if wire.template_language not in (None, "default"):  # Humanloop's other language: jinja
        language = "jinja"
        _check_jinja(texts)
    return Prompt(
        name=name,
        version=wire.version_id,
        type="text" if isinstance(prompt, str) else "chat",
        prompt=prompt,
        config=_config(wire),
        labels=tuple(e.name for e in wire.environments or ()),
        template_language=language,
    )


def _check_jinja(texts: list[str]) -> None:
    # Compiled now (and memoised for the engine), so that a template that cannot be served
    # is a failed fetch: the cache then serves the last good copy.
    for text in texts:
        if not is_plain(text):
            try:
                compile_jinja(text, split_roles=False)
            except TemplateInvalid as exc:
                raise InvalidPrompt(f"its jinja template does not compile: {exc}") from exc


_TEXT: Final = ServiceText(
    name="Humanloop",
    base_url="The Humanloop base URL (HUMANLOOP_BASE_URL)",
    example=DEFAULT_BASE_URL,
    credentials="set HUMANLOOP_API_KEY",
    check_base_url="check HUMANLOOP_BASE_URL",
    refused="the API key",
    check_credentials="check HUMANLOOP_API_KEY or the model-list entry's humanloop_api_key",
    log_event="humanloop.fetch",
)


class HumanloopStore:
    """Prompts from Humanloop's v5 API, with ``X-API-KEY``, a deadline and a small retry.

    ``timeout`` bounds the whole call, retries and backoff included. ``retries`` extra
    attempts are made on connect errors, 429 and 5xx only, after ``retry_backoff`` seconds
    (doubling); a retry that could not finish before the deadline is not started.

    ``client`` is an injected ``httpx2.AsyncClient`` (tests, or a shared pool); it is not
    closed by :meth:`aclose`. Without it the store creates its own pooled client on first
    use, inside the running event loop, and closes it in :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str,
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
        if not api_key:
            raise ConfigurationError("The Humanloop API key (HUMANLOOP_API_KEY) is empty")
        self._headers = {"x-api-key": api_key, "accept": "application/json"}

    def __repr__(self) -> str:
        return f"HumanloopStore(host={self._http.host!r})"

    async def aclose(self) -> None:
        """Close the store's own client; an injected client is left to its owner."""
        await self._http.aclose()

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        if query.version is not None:
            raise InvalidPromptRequest(
                f"Humanloop versions are ids (prv_...), not numbers, so prompt_version "
                f"{query.version} cannot be fetched: deploy the version to an environment and "
                "send its name as prompt_label",
                param="prompt_version",
            )
        if not query.name:
            raise PromptNotFound("The prompt name is empty", param="prompt_id")
        environment = query.label if query.label not in (None, DEFAULT_LABEL) else None
        params = {"environment": environment} if environment is not None else {}
        client = self._http.client()
        if _PROMPT_ID.fullmatch(query.name):
            request = client.build_request(
                "GET",
                self._http.base + _PROMPTS_PATH + path_segment(query.name),
                params=params,
                headers=self._headers,
                timeout=self._http.timeout,
            )
        else:
            request = client.build_request(
                "POST",
                self._http.base + _BY_PATH,
                params=params,
                headers=self._headers,
                json={"path": query.name},
                timeout=self._http.timeout,
            )
        subject = _describe(query.name, environment)
        what = f"prompt {subject}"
        response = await self._http.send(
            request, what, prompt=query.name, environment=environment, method=request.method
        )
        if response.status_code != 200:
            self._http.raise_for_status(
                response, what, not_found=f"Humanloop has no prompt {subject}"
            )
        try:
            return _to_prompt(_decode_prompt(response.content), query.name)
        except _NotAPrompt as exc:
            raise PromptNotFound(
                f"Humanloop's file '{query.name}' is a {exc}, not a prompt", param="prompt_id"
            ) from exc
        except (msgspec.DecodeError, InvalidPrompt) as exc:
            raise self._http.invalid(subject, exc) from exc


def _describe(name: str, environment: str | None) -> str:
    where = f"environment '{environment}'" if environment else "the default environment"
    return f"'{name}' in {where}"
