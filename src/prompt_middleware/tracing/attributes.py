"""The span's name and attributes, from the request sent on, its prompt, and the answer.

Pure functions of their arguments: OpenTelemetry GenAI attributes (``gen_ai.*``) any backend
reads, and for a managed request the Langfuse ones that link the generation to the prompt
version that produced it (README, "Traces", lists them all). Nothing here reads a header,
so no key or ``Authorization`` value can reach a span.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeGuard

import msgspec

from prompt_middleware.parameters import CHAT_COMPLETION_PARAMETERS
from prompt_middleware.tracing.answer import Answer
from prompt_middleware.tracing.record import Attributes, AttributeValue

__all__ = [
    "AttributeValue",
    "Attributes",
    "PromptLink",
    "answer_attributes",
    "api_attributes",
    "error_type_of_status",
    "prompt_attributes",
    "request_attributes",
    "requested_prompt_attributes",
    "span_name",
]


OPERATION: Final = "chat"
LANGFUSE_STORE: Final = "langfuse"

# Parameters that are not model parameters (``user`` has attributes of its own) or whose
# values are documents rather than settings (tools, schemas, maps): left out of the span.
_NOT_RECORDED: Final = frozenset(
    {
        "user",
        "metadata",
        "stream_options",
        "tools",
        "functions",
        "function_call",
        "tool_choice",
        "response_format",
        "logit_bias",
        "audio",
        "prediction",
        "web_search_options",
    }
)
_RECORDED_PARAMETERS: Final = CHAT_COMPLETION_PARAMETERS - _NOT_RECORDED
_PARAMETER_KEYS: Final = {name: f"gen_ai.request.{name}" for name in _RECORDED_PARAMETERS}

_decode: Final = msgspec.json.decode
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_MOST_LINKS: Final = 1024
_linked: dict[PromptLink, Attributes] = {}


class PromptLink(msgspec.Struct, frozen=True):
    """What a managed request's span says about the prompt that served it.

    ``label`` is the label fetched (None when a version was asked for); ``cache`` and
    ``variant`` are the values of ``x-prompt-cache`` and ``x-prompt-variant``.
    """

    name: str
    version: int | str
    store: str
    cache: str
    label: str | None = None
    variant: str | None = None


def span_name(model: str | None) -> str:
    """``chat <model sent on>`` (GenAI's ``{operation} {model}``), or ``chat``."""
    return f"{OPERATION} {model}" if model else OPERATION


def request_attributes(
    fields: Mapping[str, msgspec.Raw], *, content: bool
) -> tuple[str | None, Attributes]:
    """The model sent on and the attributes of the request body sent on.

    ``fields`` is that body's top level as raw JSON (``dict[str, Raw]``): a value is decoded
    only when it is recorded, and the messages go into the span as the JSON text they are.
    """
    attributes: Attributes = {"gen_ai.operation.name": OPERATION}
    model = _scalar(fields.get("model"))
    if isinstance(model, str):
        attributes["gen_ai.request.model"] = model
    else:
        model = None
    for name, raw in fields.items():  # in the body's order
        key = _PARAMETER_KEYS.get(name)
        if key is not None:
            value = _parameter(raw)
            if value is not None:
                attributes[key] = value
    user = _scalar(fields.get("user"))
    if isinstance(user, str) and user:
        attributes["user.id"] = user
        attributes["langfuse.user.id"] = user
    messages = fields.get("messages")
    if content and messages is not None:
        attributes["langfuse.observation.input"] = bytes(messages).decode("utf-8", "replace")
    return model, attributes


def api_attributes(
    fields: Mapping[str, msgspec.Raw],
    *,
    provider: str,
    user: msgspec.Raw | None,
    conversation: str,
    content: bool,
) -> Attributes:
    """What a Responses or Messages request says in its own fields: the provider, the user
    (``user``/``safety_identifier``, ``metadata.user_id``) and the conversation sent on."""
    attributes: Attributes = {"gen_ai.provider.name": provider}
    value = _scalar(user)
    if isinstance(value, str) and value:
        attributes["user.id"] = value
        attributes["langfuse.user.id"] = value
    messages = fields.get(conversation)
    if content and messages is not None:
        attributes["langfuse.observation.input"] = bytes(messages).decode("utf-8", "replace")
    return attributes


def prompt_attributes(link: PromptLink) -> Attributes:
    """:func:`linked_prompt_attributes`, made once per prompt version, label, store, cache
    status and variant (every request of one of them says the same). Shared: add it to a
    span's attributes, never change it."""
    attributes = _linked.get(link)
    if attributes is None:
        if len(_linked) >= _MOST_LINKS:
            _linked.clear()
        attributes = _linked[link] = linked_prompt_attributes(link)
    return attributes


def linked_prompt_attributes(link: PromptLink) -> Attributes:
    """The Langfuse attributes that make the span a generation of this prompt version.

    Langfuse links a generation to a prompt by name and integer version, and drops a
    generation that names a prompt without a version: only a Langfuse prompt (whose version
    is Langfuse's) is named by ``prompt.name`` and ``prompt.version``, always both; a prompt
    of any other store is named in the generation's metadata instead.
    """
    attributes: Attributes = {"langfuse.observation.type": "generation"}
    if link.store == LANGFUSE_STORE and type(link.version) is int:
        attributes["langfuse.observation.prompt.name"] = link.name
        attributes["langfuse.observation.prompt.version"] = link.version
    else:
        attributes["langfuse.observation.metadata.prompt_name"] = link.name
        attributes["langfuse.observation.metadata.prompt_version"] = link.version
    attributes["langfuse.observation.metadata.prompt_store"] = link.store
    attributes["langfuse.observation.metadata.prompt_cache"] = link.cache
    if link.label is not None:
        attributes["langfuse.observation.metadata.prompt_label"] = link.label
    if link.variant is not None:
        attributes["langfuse.observation.metadata.experiment_variant"] = link.variant
    return attributes


def requested_prompt_attributes(fields: Mapping[str, msgspec.Raw]) -> Attributes:
    """The prompt a request asked for (``prompt_id``), for a span that ends before a prompt
    was served: in the metadata, since no version is known to link."""
    name = _scalar(fields.get("prompt_id"))
    if isinstance(name, str) and name:
        return {"langfuse.observation.metadata.prompt_name": name}
    return {}


def answer_attributes(answer: Answer) -> Attributes:
    """What the answer said: its model, id, token usage and message."""
    attributes: Attributes = {}
    if answer.model:
        attributes["gen_ai.response.model"] = answer.model
    if answer.response_id:
        attributes["gen_ai.response.id"] = answer.response_id
    usage = answer.usage
    if usage is not None:
        if _fits_int64(usage.prompt_tokens):
            attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        if _fits_int64(usage.completion_tokens):
            attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
    if answer.output is not None:
        attributes["langfuse.observation.output"] = answer.output
    return attributes


def error_type_of_status(status: int) -> str | None:
    """``error.type`` for an answer with this status: the status itself from 400 on."""
    return str(status) if status >= 400 else None


def _scalar(raw: msgspec.Raw | None) -> object:
    if raw is None:
        return None
    try:
        return _decode(raw)
    except msgspec.DecodeError:
        return None


def _parameter(raw: msgspec.Raw) -> AttributeValue | None:
    """A parameter's value as an attribute value: a scalar, or a list of strings (``stop``)."""
    value = _scalar(raw)
    if isinstance(value, int) and not isinstance(value, bool):
        return value if _fits_int64(value) else None
    if isinstance(value, str | bool | float):
        return value
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None  # null, objects, mixed lists: not an attribute value


def _fits_int64(value: int | None) -> TypeGuard[int]:
    # OTLP carries integers as int64: a larger one would make the whole batch fail to encode.
    return value is not None and _INT64_MIN <= value <= _INT64_MAX
