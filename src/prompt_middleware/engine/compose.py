"""Step 3 of a rewrite: the plan, the request's variables and messages -> the new body.

Parameter precedence, lowest first: the model-list entry's ``litellm_params`` (defaults),
then the request's own fields, then the prompt's config (README, "How a request is
rewritten"). With ``PROMPT_MIDDLEWARE_PARAM_PRECEDENCE=request`` the request's fields win
over the prompt's; a ``prompts:`` binding with ``ignore_prompt_manager_optional_params``
leaves the prompt's out. The model: the prompt's config ``model`` unless absent or ignored
(``ignore_prompt_manager_model``), then the request's (provider prefix removed).
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
import structlog

from prompt_middleware.cache import CacheStatus
from prompt_middleware.engine.plan import PROVIDER_PREFIX, PromptPlan
from prompt_middleware.engine.resolve import Resolution, Target
from prompt_middleware.engine.result import RewriteResult
from prompt_middleware.engine.variables import VariableLimits
from prompt_middleware.errors import InvalidRequest
from prompt_middleware.request import RequestFields
from prompt_middleware.settings import Settings

__all__ = ["Composer", "request_body"]

logger = structlog.get_logger(__name__)

_encode: Final = msgspec.json.Encoder().encode
_OPEN_BRACKET: Final = ord("[")
_is_blank: Final = re.compile(rb"[ \t\n\r]*").fullmatch


class Composer:
    """Renders plans into request bodies under one engine's settings."""

    def __init__(self, settings: Settings) -> None:
        self._render_options = settings.render_options
        self._prompt_wins = settings.param_precedence == "prompt"
        self._variables = VariableLimits(
            max_bytes=settings.max_variables_bytes,
            max_entries=settings.max_variables,
            max_depth=settings.max_variables_depth,
        )

    def without_prompt(self, fields: RequestFields, request: Resolution) -> RewriteResult:
        """No prompt named: the model loses its store prefix; the entry's defaults apply."""
        output = request_body(fields, request)
        if request.model is not None:
            output["model"] = request.model
        return RewriteResult(body=_encode(output), model=request.model, entry=request.entry)

    def compose(
        self,
        fields: RequestFields,
        request: Resolution,
        target: Target,
        plan: PromptPlan,
        status: CacheStatus,
        waited: bool,
    ) -> RewriteResult:
        """The rewritten request for a prompt the cache or the store gave."""
        output = request_body(fields, request)
        rendered = plan.prepared.render(
            self._variables.decode(fields),
            lambda: _client_messages(fields),
            self._render_options,
        )
        if rendered.missing_variables:
            prompt = plan.prompt
            logger.warning(
                "prompt_variables_missing",
                prompt=prompt.name,
                version=prompt.version,
                variables=list(rendered.missing_variables),
            )
        use_prompt_model = target.use_prompt_model and plan.model is not None
        model = plan.model if use_prompt_model else request.model
        if model is not None:
            model = model.removeprefix(PROVIDER_PREFIX)
            output["model"] = model
        output["messages"] = rendered.messages
        if target.use_prompt_params:
            if self._prompt_wins:
                output.update(plan.params)
            else:  # the request's own fields win
                for name, value in plan.params:
                    if name not in fields:
                        output[name] = value
        headers = (*plan.headers, target.store_header, _cache_header(status))
        choice = request.experiment_choice
        return RewriteResult(
            body=_encode(output),
            model=model,
            entry=request.entry,
            prompt=plan.prompt,
            store=target.binding.prefix,
            cache_status=status,
            headers=headers if choice is None else (*headers, choice.arm.header),
            waited=waited,
            experiment_name=choice.split.name if choice is not None else None,
            variant_name=choice.arm.name if choice is not None else None,
            label=target.query.label,
        )


def request_body(fields: RequestFields, request: Resolution) -> dict[str, Any]:
    """The request's fields without the extension fields, over the entry's defaults."""
    output: dict[str, Any] = dict(fields)
    for name in request.extensions:
        del output[name]
    for name in request.prefixed:
        del output[name]
    if request.entry is not None:
        for key, value in request.entry.params.items():
            output.setdefault(key, value)
    return output


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


def _cache_header(status: CacheStatus) -> tuple[bytes, bytes]:
    return _CACHE_HIT_HEADER if status is CacheStatus.HIT else _CACHE_HEADERS[status.value]


_CACHE_HEADERS: Final = {
    status.value: (b"x-prompt-cache", status.value.encode()) for status in CacheStatus
}
_CACHE_HIT_HEADER: Final = _CACHE_HEADERS[CacheStatus.HIT.value]
