"""What every API record is made of: its route, where its fields live, and its parameter table.

An :class:`Api` is data the engine reads, not a step of its own: compose renders the prompt
(as for any API) and hands the rendered messages and the prompt's parameters to the request's
API record, which writes them where that API keeps them. The parameter table
(:class:`Param`) says, for each chat-completions name a prompt config may hold, which field of
the target API receives it and how its value is reshaped; :meth:`Api.config_writes` applies it
once per prompt version (the plan keeps the result) and :func:`apply_writes` per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from starlette.types import Send

from prompt_middleware.asgi import JSON, send_response
from prompt_middleware.errors import InvalidRequest, RequestError
from prompt_middleware.render import ClientMessagesMode
from prompt_middleware.request import RequestFields

__all__ = [
    "ANTHROPIC",
    "NOT_SENT",
    "Api",
    "Param",
    "Write",
    "Writes",
    "apply_writes",
    "pieces",
    "sse",
]

#: ``provider`` of the APIs whose upstream takes its key as ``x-api-key``.
ANTHROPIC: Final = "anthropic"
#: What a converter returns for a value the target API has no place for.
NOT_SENT: Final = object()
_OPEN_BRACKET: Final = ord("[")
_NULL: Final = msgspec.Raw(b"null")
_is_blank: Final = re.compile(rb"[ \t\n\r]*").fullmatch
_decode_object: Final = msgspec.json.Decoder(dict[str, Any]).decode
_encode: Final = msgspec.json.Encoder().encode
_SYSTEM_ROLES: Final = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class Param:
    """Where one chat-completions parameter goes in another API.

    ``path`` is the field (``("max_output_tokens",)``) or a field of an object field
    (``("text", "format")``); ``convert`` reshapes the value (returning :data:`NOT_SENT`
    drops it); ``parent`` is the object a nested field starts from when the request has none
    (``{"type": "auto"}`` for a ``tool_choice`` that only disables parallel tool use).
    """

    path: tuple[str] | tuple[str, str]
    convert: Callable[[Any], Any] | None = None
    parent: Mapping[str, Any] | None = None


#: A field of an object field as the prompt sets it: (field, its member, value, the object to
#: start from when the request has none).
Write = tuple[str, str, Any, Mapping[str, Any] | None]


class Writes(msgspec.Struct, frozen=True):
    """A prompt config's parameters for one API: whole fields, then fields of objects."""

    fields: tuple[tuple[str, Any], ...] = ()
    members: tuple[Write, ...] = ()


class Api:
    """One API the middleware manages prompts on (chat completions, Responses, Messages).

    Subclasses are one module each under ``apis/``; what differs between APIs is data here
    (field names, the parameter table) and the few methods a subclass overrides.
    """

    #: Short name: ``render --api`` and the settings use it.
    name: str = ""
    #: A route belongs to this API when its path ends with this.
    route_suffix: str = ""
    #: ``gen_ai.provider.name`` of its spans.
    provider: str = "openai"
    #: The field holding the conversation.
    conversation: str = "messages"
    #: The field holding the system text, or None when system messages stay in the
    #: conversation (chat completions).
    system_slot: str | None = None
    #: What happens to the client's conversation when PROMPT_MIDDLEWARE_CLIENT_MESSAGES is
    #: unset.
    default_client_messages: ClientMessagesMode = "ignore"
    #: The chat-completions names a config may use, and where each goes.
    parameters: Mapping[str, Param] = {}
    #: The API's own parameter names, sent as they are when a config uses them.
    native_parameters: frozenset[str] = frozenset()

    #: Whether :meth:`prepare` changes anything (the engine skips the call otherwise).
    prepares: bool = False

    def __init__(self) -> None:
        #: :meth:`user_key`, bound once (the resolver is handed it on every request).
        self.user_of = self.user_key

    def prepare(self, fields: RequestFields) -> RequestFields:
        """The request's fields as the engine reads them (an API's own way of naming a prompt
        becomes the extension fields). The same dict when nothing changes."""
        return fields

    def client_conversation(self, fields: RequestFields) -> list[Any] | None:
        """The client's conversation as items to place after the prompt's messages: one
        ``Raw`` standing for all of a JSON array's items; ``[]`` for an empty array, None when
        absent or null; 400 when it is not an array."""
        raw = fields.get(self.conversation)
        if raw is None:
            return None
        # The body decoder checked that the value is JSON: its first byte says which kind.
        # The encoder writes a Raw verbatim, so in our array the bytes between the client's
        # "[" and "]" become its items, in order, copied as sent: the conversation (most of a
        # request) is neither split into items nor re-encoded.
        view = memoryview(raw)
        if view[0] == _OPEN_BRACKET:
            items = view[1:-1]
            return [] if _is_blank(items) else [msgspec.Raw(items)]
        if raw == _NULL:
            return None
        name = self.conversation
        raise InvalidRequest(f"'{name}' must be a JSON array.", param=name)

    def continues_conversation(self, fields: RequestFields) -> bool:
        """True when the upstream already holds the conversation's start (the prompt's
        messages must not be sent again)."""
        return False

    def user_key(self, fields: Mapping[str, msgspec.Raw]) -> msgspec.Raw | None:
        """The raw JSON value naming the end user (experiments' sticky key, the span's user)."""
        return fields.get("user")

    def write_messages(
        self, output: dict[str, Any], messages: list[Any], fields: RequestFields
    ) -> bool:
        """Write the rendered messages into ``output``; True when the client's own system
        text was replaced (the request's log line says so)."""
        slot = self.system_slot
        if slot is None:
            output[self.conversation] = messages
            return False
        system: list[str] = []
        conversation: list[Any] = []
        for message in messages:
            # The prompt's messages are dicts; the client's conversation is raw bytes.
            if type(message) is dict and message.get("role") in _SYSTEM_ROLES:
                content = message.get("content")
                system.append(content if type(content) is str else _text_of(content))
            else:
                conversation.append(message)
        if not self.continues_conversation(fields):
            output[self.conversation] = conversation
        if not system:
            return False
        output[slot] = system[0] if len(system) == 1 else "\n\n".join(system)
        return slot in fields

    def config_writes(self, config: Mapping[str, Any]) -> Writes:
        """A prompt config's parameters as this API's fields: translated through the table,
        the API's own names as they are, every other key left out."""
        fields: list[tuple[str, Any]] = []
        members: list[Write] = []
        for key, value in config.items():
            param = self.parameters.get(key)
            if param is None:
                if key in self.native_parameters:
                    fields.append((key, value))
                continue
            if param.convert is not None:
                value = param.convert(value)
                if value is NOT_SENT:
                    continue
            if len(param.path) == 1:
                fields.append((param.path[0], value))
            else:
                members.append((param.path[0], param.path[1], value, param.parent))
        return Writes(tuple(fields), tuple(members))

    def echo_answer(self, answer_id: str, model: str, text: str) -> bytes:
        """The echo upstream's JSON answer (``--echo``): one assistant message of ``text``."""
        raise NotImplementedError

    def echo_events(self, answer_id: str, model: str, text: str) -> list[bytes]:
        """The echo upstream's streamed answer: the API's events, ``text`` in a few deltas."""
        raise NotImplementedError

    def error_json(self, error: RequestError) -> bytes:
        """The body of one of our errors, in this API's shape (OpenAI's by default)."""
        return error.to_json()

    async def send_error(
        self, send: Send, error: RequestError, extra_headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        """Answer an ASGI request with ``error`` in this API's shape."""
        await send_response(send, error.status_code, self.error_json(error), JSON, extra_headers)


def apply_writes(
    output: dict[str, Any], fields: Mapping[str, Any], writes: Writes, *, prompt_wins: bool
) -> None:
    """Set the prompt's parameters in ``output``. When the request wins, a field (or a field
    of an object) the request already has in ``fields`` is left as sent."""
    if prompt_wins:
        output.update(writes.fields)
    else:
        for name, value in writes.fields:
            if name not in fields:
                output[name] = value
    # Fields of objects after whole fields: they may land in an object just written.
    for name, member, value, parent in writes.members:
        current = _object(output.get(name))
        if current is None:
            if not prompt_wins and name in fields:
                continue  # the request's own value, not an object: it wins
            current = dict(parent) if parent is not None else {}
        elif not prompt_wins and member in current:
            continue
        current[member] = value
        output[name] = current


def _object(value: Any) -> dict[str, Any] | None:
    """A copy of ``value`` when it is a JSON object (decoded when raw), else None."""
    if isinstance(value, msgspec.Raw):
        try:
            return _decode_object(value)
        except msgspec.DecodeError:
            return None
    if isinstance(value, dict):
        return dict(value)
    return None


def _text_of(content: Any) -> str:
    """A system message's text: its string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def sse(event: str | None, data: Any) -> bytes:
    """One server-sent event: ``event:`` (when named) and ``data:`` lines, then a blank one."""
    head = b"" if event is None else b"event: " + event.encode("ascii") + b"\n"
    return head + b"data: " + _encode(data) + b"\n\n"


def pieces(text: str, count: int = 4) -> list[str]:
    """``text`` in about ``count`` pieces (at least one), as a streamed answer comes."""
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
