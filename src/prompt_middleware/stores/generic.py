"""Any prompt service that speaks LiteLLM's *Generic Prompt Management API*.

The contract (LiteLLM's ``docs/.../generic_prompt_management.md`` and
``litellm/integrations/generic_prompt_management/generic_prompt_manager.py``)::

    GET {api_base}/beta/litellm_prompt_management?prompt_id=<id>&<query_params>
    Authorization: Bearer <api_key>          (only when an api_key is configured)

    200 {"prompt_id": "...",
         "prompt_template": [{"role": "system", "content": "... {domain} ..."}, ...],
         "prompt_template_model": "gpt-4",                    (optional)
         "prompt_template_optional_params": {"temperature": 0.7}}   (optional)

We send exactly what LiteLLM sends: ``prompt_id`` first, then the configured
``provider_specific_query_params``; never a label or a version, which the contract does not
have. So ``PromptQuery.version`` is refused (400, param ``prompt_version``), and so is any label
but ``production`` (the label a request without ``prompt_label`` carries): serving the same
prompt whatever label was asked for, as LiteLLM silently does, would make labels look as if
they worked. A variant of a prompt is chosen with the query parameters.

The mapping onto :class:`~prompt_middleware.prompts.Prompt`:

* ``prompt_template`` -> a chat prompt of ``role``/``content`` (``name`` = the ``prompt_id``
  asked for). Content given as parts has its text parts joined (as LiteLLM flattens them);
  any other part makes the prompt invalid; ``null`` content is ``""``; other message keys are
  dropped. An empty list is a prompt with no messages (it can still set model and parameters).
* ``config`` = ``prompt_template_optional_params`` without its ``null`` values, plus
  ``"model": prompt_template_model`` when that is set (a ``model`` key among the optional
  params is dropped: the model has its own field).
* ``version``: the contract has none, so it is the first 12 hex digits of the SHA-256 of the
  served messages and config: stable while the prompt is unchanged, different when it changes,
  which is what ``x-prompt-version`` is for.

Variables. LiteLLM replaces, for each given variable ``name``, ``{name}`` and then
``{{name}}`` (str.replace, so in fact ``{{name}}`` comes out as ``{value}``: it replaced the
inner ``{name}`` first). Our renderer fills ``{{name}}`` only, with Langfuse's semantics. So a
single-brace ``{name}`` is rewritten to ``{{name}}`` here, once, when the prompt is fetched,
where ``name`` is an identifier (a letter or ``_``, then letters, digits, ``_``) and the braces
are single: not preceded by ``{``, not followed by ``}``. Text the renderer already reads as a
``{{...}}`` variable is left alone, and so is everything after a ``{{`` that is never closed
(doubling there would close it). So ``{{a}}`` stays, ``{a}`` becomes ``{{a}}``,
``{ "json": 1 }``, ``{}``, ``{0}``, ``{ a }``, ``{a-b}`` and ``{{{a}}}`` are untouched, and
``{{a}}`` is filled with ``value``, not ``{value}``. One difference remains: a ``{name}`` whose
variable the request does not give stays ``{{name}}`` (not ``{name}``) and counts as missing
(a warning; a 400 with ``PROMPT_MIDDLEWARE_STRICT_VARIABLES``), where LiteLLM leaves
``{name}`` as written.

Statuses and httpx2 errors become PromptNotFound / PromptStoreUnavailable as ``_http.py``
says; a 401 or 403 names a missing ``api_key`` when none is configured.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

import httpx2
import msgspec
import structlog

from prompt_middleware.errors import (
    ConfigurationError,
    InvalidPromptRequest,
    PromptNotFound,
)
from prompt_middleware.prompts import DEFAULT_LABEL, ChatMessage, Prompt, PromptQuery
from prompt_middleware.stores._http import HttpService, ServiceText
from prompt_middleware.stores._wire import InvalidPrompt, WireMessage, text_content

__all__ = ["GenericPromptStore", "double_single_braces"]

logger = structlog.get_logger(__name__)

_ENDPOINT: Final = "/beta/litellm_prompt_management"
_VERSION_DIGITS: Final = 12
_SINGLE_BRACE_VARIABLE: Final = re.compile(r"(?<!\{)\{([^\W\d]\w*)\}(?!\})")
_OPENING: Final = "{{"
_CLOSING: Final = "}}"


# --- the wire format -----------------------------------------------------------------------


class _PromptResponse(msgspec.Struct, frozen=True):
    prompt_template: tuple[WireMessage, ...]
    prompt_id: Any = None
    prompt_template_model: str | None = None
    prompt_template_optional_params: dict[str, Any] | None = None


_decode_prompt = msgspec.json.Decoder(_PromptResponse).decode
_encode = msgspec.json.Encoder(order="sorted").encode


def double_single_braces(text: str) -> str:
    """``text`` with each single-brace ``{name}`` written ``{{name}}`` (see the module doc)."""
    if "{" not in text:
        return text
    parts: list[str] = []
    position = 0
    while True:
        # The renderer reads a variable from a "{{" to the next "}}": those spans are kept.
        start = text.find(_OPENING, position)
        if start == -1:
            parts.append(_SINGLE_BRACE_VARIABLE.sub(r"{{\1}}", text[position:]))
            break
        parts.append(_SINGLE_BRACE_VARIABLE.sub(r"{{\1}}", text[position:start]))
        end = text.find(_CLOSING, start)
        if end == -1:
            # An unclosed "{{": a "}}" written after it would close it, so leave the rest.
            parts.append(text[start:])
            break
        parts.append(text[start : end + len(_CLOSING)])
        position = end + len(_CLOSING)
    return "".join(parts)


def _to_prompt(wire: _PromptResponse, name: str) -> Prompt:
    messages = tuple(
        ChatMessage(role=m.role, content=double_single_braces(text_content(m)))
        for m in wire.prompt_template
    )
    # A fresh dict per fetch: nothing in it is shared with another Prompt.
    config: dict[str, Any] = {
        k: v
        for k, v in (wire.prompt_template_optional_params or {}).items()
        if v is not None and k != "model"
    }
    if wire.prompt_template_model:
        config["model"] = wire.prompt_template_model
    digest = hashlib.sha256(_encode([messages, config])).hexdigest()
    return Prompt(
        name=name,
        version=digest[:_VERSION_DIGITS],
        type="chat",
        prompt=messages,
        config=config,
    )


_TEXT: Final = ServiceText(
    name="The prompt service",
    base_url="The prompt service's api_base",
    example="http://localhost:8080",
    credentials="set api_key",
    check_base_url=f"check that api_base serves {_ENDPOINT}",
    refused="the API key",
    check_credentials="check the prompts: entry's api_key",
    log_event="generic_prompts.fetch",
    query_hint="; set provider_specific_query_params",
)


class GenericPromptStore:
    """Prompts from a service implementing LiteLLM's Generic Prompt Management API.

    ``api_base`` is the service's base URL (LiteLLM's ``api_base``), ``api_key`` its optional
    bearer key, ``query_params`` LiteLLM's ``provider_specific_query_params``, sent with every
    request. ``timeout`` bounds the whole call, retries and backoff included; ``retries``
    extra attempts are made on connect errors, 429 and 5xx only, after ``retry_backoff``
    seconds (doubling), and only when they can finish before the deadline.

    ``client`` is an injected ``httpx2.AsyncClient`` (tests, or a shared pool); it is not
    closed by :meth:`aclose`. Without it the store creates its own pooled client on first
    use, inside the running event loop, and closes it in :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        api_base: str,
        api_key: str | None = None,
        query_params: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        retries: int = 1,
        retry_backoff: float = 0.05,
        client: httpx2.AsyncClient | None = None,
    ) -> None:
        # Without a key, a refusal means the service wants one.
        text = (
            _TEXT
            if api_key
            else replace(_TEXT, check_credentials="it needs an api_key in the prompts: entry")
        )
        self._http = HttpService(
            text,
            base_url=api_base,
            timeout=timeout,
            retries=retries,
            retry_backoff=retry_backoff,
            client=client,
        )
        params = dict(query_params or {})
        for key, value in params.items():
            if not isinstance(key, str) or not key or not isinstance(value, str):
                raise ConfigurationError(
                    f"provider_specific_query_params must map names to strings; {key!r} does not"
                )
        if "prompt_id" in params:
            raise ConfigurationError(
                "provider_specific_query_params must not set prompt_id: it is the prompt asked for"
            )
        self._url = self._http.base + _ENDPOINT
        self._query_params = params
        self._headers = {"accept": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return f"GenericPromptStore(host={self._http.host!r})"

    async def aclose(self) -> None:
        """Close the store's own client; an injected client is left to its owner."""
        await self._http.aclose()

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        if query.version is not None:
            raise InvalidPromptRequest(
                "LiteLLM's Generic Prompt Management API has no versions, so prompt_version "
                "cannot be served: leave it out (choose a variant with the prompts: entry's "
                "provider_specific_query_params)",
                param="prompt_version",
            )
        if query.label not in (None, DEFAULT_LABEL):
            raise InvalidPromptRequest(
                f"LiteLLM's Generic Prompt Management API has no labels, so prompt_label "
                f"'{query.label}' cannot be served: leave it out (choose a variant with the "
                "prompts: entry's provider_specific_query_params)",
                param="prompt_label",
            )
        if not query.name:
            raise PromptNotFound("The prompt name is empty", param="prompt_id")
        request = self._http.client().build_request(
            "GET",
            self._url,
            params={"prompt_id": query.name, **self._query_params},
            headers=self._headers,
            timeout=self._http.timeout,
        )
        what = f"prompt '{query.name}'"
        # The query parameters' values are not logged: they are the operator's, and may be
        # tokens in disguise.
        response = await self._http.send(request, what, prompt=query.name)
        if response.status_code != 200:
            self._http.raise_for_status(
                response, what, not_found=f"{self._http.at} has no prompt '{query.name}'"
            )
        try:
            return _to_prompt(_decode_prompt(response.content), query.name)
        except (msgspec.DecodeError, InvalidPrompt) as exc:
            raise self._http.invalid(f"'{query.name}'", exc) from exc
