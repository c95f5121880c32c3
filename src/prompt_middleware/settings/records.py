"""The records settings are made of: a secret, a model-list entry, a ``prompts:`` binding."""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

__all__ = ["MASK", "ModelEntry", "PromptBinding", "Secret", "decode_secret"]

#: What a secret prints as, in a repr, a log line or an error message.
MASK: Final = "**********"


class Secret:
    """A string that never shows itself in a repr, a log line or an error message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def decode_secret(type_: type, value: Any) -> Any:
    """``dec_hook`` for ``msgspec.convert``: a string becomes a :class:`Secret`."""
    if type_ is Secret and isinstance(value, str):
        return Secret(value)
    raise NotImplementedError


class ModelEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One ``model_list`` entry: what a client's ``model`` name stands for.

    ``model`` keeps its store prefix (``langfuse/gpt-4o-mini``); ``params`` are the entry's
    default chat-completions parameters, which the request and the prompt override. The
    store fields give the entry a store of its own (``stores/kinds.py`` names them).
    """

    model_name: str
    model: str
    prompt_id: str | None = None
    prompt_label: str | None = None
    prompt_version: int | None = None
    api_base: str | None = None
    api_key: Secret | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    langfuse_public_key: str | None = None
    langfuse_secret_key: Secret | None = None
    langfuse_host: str | None = None
    humanloop_api_key: Secret | None = None
    humanloop_base_url: str | None = None


class PromptBinding(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of LiteLLM's ``prompts:`` section: a ``prompt_id`` bound to a store.

    A request naming ``prompt_id`` is managed by ``integration`` whatever its model.
    ``ignore_prompt_manager_model`` keeps the request's model; ``ignore_prompt_manager_
    optional_params`` keeps the prompt's parameters out of the request.
    """

    prompt_id: str
    integration: Literal["generic_prompt_management", "langfuse", "dotprompt", "humanloop"]
    api_base: str | None = None
    api_key: Secret | None = None
    query_params: dict[str, str] = msgspec.field(default_factory=dict)
    ignore_prompt_manager_model: bool = False
    ignore_prompt_manager_optional_params: bool = False
