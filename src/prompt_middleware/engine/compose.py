"""Step 3 of a rewrite: the plan, the request's variables and messages -> the new body.

Parameter precedence, lowest first: the model-list entry's ``litellm_params`` (defaults),
then the request's own fields, then the prompt's config (README, "How a request is
rewritten"). With ``PROMPT_MIDDLEWARE_PARAM_PRECEDENCE=request`` the request's fields win
over the prompt's; a ``prompts:`` binding with ``ignore_prompt_manager_optional_params``
leaves the prompt's out. The model: the prompt's config ``model`` unless absent or ignored
(``ignore_prompt_manager_model``), then the request's (provider prefix removed).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

import msgspec
import structlog

from prompt_middleware.apis import APIS, CHAT, Api, Writes, apply_writes
from prompt_middleware.cache import CacheStatus
from prompt_middleware.engine.plan import PROVIDER_PREFIX, PromptPlan
from prompt_middleware.engine.resolve import Resolution, Target
from prompt_middleware.engine.result import RewriteResult
from prompt_middleware.engine.variables import VariableLimits
from prompt_middleware.render import ClientMessagesMode, RenderOptions
from prompt_middleware.request import RequestFields
from prompt_middleware.settings import Settings

__all__ = ["Composer", "request_body"]

logger = structlog.get_logger(__name__)

_encode: Final = msgspec.json.Encoder().encode


class Composer:
    """Renders plans into request bodies under one engine's settings."""

    def __init__(self, settings: Settings) -> None:
        # PROMPT_MIDDLEWARE_CLIENT_MESSAGES applies to every API when set; unset, each API
        # has its own default (chat ignores the client's messages, the others append them).
        self._render_options: dict[str, RenderOptions] = {
            api.name: replace(
                settings.render_options,
                client_messages=_client_messages_mode(settings, api),
            )
            for api in APIS
        }
        # A model-list entry's default parameters under each API's names, worked out once.
        self._entry_writes: dict[tuple[str, str], Writes] = {
            (api.name, entry.model_name): api.config_writes(entry.params)
            for api in APIS
            if api is not CHAT
            for entry in settings.model_list
        }
        self._prompt_wins = settings.param_precedence == "prompt"
        self._variables = VariableLimits(
            max_bytes=settings.max_variables_bytes,
            max_entries=settings.max_variables,
            max_depth=settings.max_variables_depth,
        )

    def without_prompt(
        self, fields: RequestFields, request: Resolution, api: Api = CHAT
    ) -> RewriteResult:
        """No prompt named: the model loses its store prefix; the entry's defaults apply."""
        if api is CHAT or request.entry is None:
            output = request_body(fields, request)
        else:
            output = self._entry_body(fields, request, api)
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
        api: Api = CHAT,
    ) -> RewriteResult:
        """The rewritten request for a prompt the cache or the store gave."""
        if api is CHAT or request.entry is None:
            output = request_body(fields, request)
        else:
            output = self._entry_body(fields, request, api)
        rendered = plan.prepared.render(
            self._variables.decode(fields),
            lambda: api.client_conversation(fields),
            self._render_options[api.name],
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
        wrote_system = api.write_messages(output, rendered.messages, fields)
        replaced = api.system_slot if wrote_system else None
        if target.use_prompt_params:
            writes = plan.writes[api.name]
            if self._prompt_wins and not writes.members:
                output.update(writes.fields)  # the usual case, chat's always
            else:
                apply_writes(output, fields, writes, prompt_wins=self._prompt_wins)
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
            replaced=replaced,
        )

    def _entry_body(self, fields: RequestFields, request: Resolution, api: Api) -> dict[str, Any]:
        """:func:`request_body` with the entry's defaults under ``api``'s names."""
        assert request.entry is not None
        output = request_body(fields, request, with_entry_params=False)
        writes = self._entry_writes[(api.name, request.entry.model_name)]
        apply_writes(output, output, writes, prompt_wins=False)
        return output


def request_body(
    fields: RequestFields, request: Resolution, *, with_entry_params: bool = True
) -> dict[str, Any]:
    """The request's fields without the extension fields, over the entry's defaults."""
    output: dict[str, Any] = dict(fields)
    for name in request.extensions:
        del output[name]
    for name in request.prefixed:
        del output[name]
    if with_entry_params and request.entry is not None:
        for key, value in request.entry.params.items():
            output.setdefault(key, value)
    return output


def _client_messages_mode(settings: Settings, api: Api) -> ClientMessagesMode:
    if settings.client_messages is not None:
        return settings.client_messages
    return api.default_client_messages


def _cache_header(status: CacheStatus) -> tuple[bytes, bytes]:
    return _CACHE_HIT_HEADER if status is CacheStatus.HIT else _CACHE_HEADERS[status.value]


_CACHE_HEADERS: Final = {
    status.value: (b"x-prompt-cache", status.value.encode()) for status in CacheStatus
}
_CACHE_HIT_HEADER: Final = _CACHE_HEADERS[CacheStatus.HIT.value]
