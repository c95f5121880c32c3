"""The APIs a managed prompt can be sent on, one record each (README, "Three APIs").

    chat.py       OpenAI Chat Completions   …/chat/completions
    responses.py  OpenAI Responses          …/responses
    messages.py   Anthropic Messages        …/messages

A route's API is the one its path ends with (:func:`api_for_path`). The engine renders a prompt
the same way for every API and hands the result to the request's record (``base.py``), which
knows where that API keeps its conversation, its system text and its parameters. Adding an API
is one more module here and its entry in :data:`APIS`.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.types import Scope

from prompt_middleware.apis.base import ANTHROPIC, NOT_SENT, Api, Param, Writes, apply_writes
from prompt_middleware.apis.chat import CHAT
from prompt_middleware.apis.messages import MESSAGES
from prompt_middleware.apis.responses import RESPONSES

__all__ = [
    "ANTHROPIC",
    "APIS",
    "CHAT",
    "COUNT_TOKENS_SUFFIX",
    "MESSAGES",
    "NOT_SENT",
    "RESPONSES",
    "Api",
    "Param",
    "Writes",
    "api_for_path",
    "api_named",
    "api_of",
    "apply_writes",
    "is_anthropic_path",
]

APIS: Final[tuple[Api, ...]] = (CHAT, RESPONSES, MESSAGES)
#: Anthropic's token counting takes a Messages body, but is never a managed route.
COUNT_TOKENS_SUFFIX: Final = "/count_tokens"
_BY_NAME: Final = {api.name: api for api in APIS}


def api_for_path(path: str) -> Api:
    """The API of a route: the one its path ends with; chat completions for any other."""
    for api in APIS:
        if path.endswith(api.route_suffix):
            return api
    return CHAT


#: Anthropic's paths: ``/v1/messages`` and every ``/v1/messages/…`` (``count_tokens``, ...).
_ANTHROPIC_PATH_PART: Final = "v1/messages"
_anthropic_path: Final = re.compile(r"(?:^|/)v1/messages(?:/|$)").search


def is_anthropic_path(path: str) -> bool:
    """Whether the sidecar sends ``path`` to the Anthropic upstream (README, "Three APIs")."""
    # Asked of every forwarded request: a substring test settles most paths without the regex.
    return _ANTHROPIC_PATH_PART in path and _anthropic_path(path) is not None


def api_of(scope: Scope) -> Api:
    """The API whose shape the sidecar's own answers on this request take: Messages on
    Anthropic's paths, else chat completions (Responses shares its error shape)."""
    return MESSAGES if is_anthropic_path(scope["path"]) else CHAT


def api_named(name: str) -> Api:
    """The API of this name (``chat``, ``responses``, ``messages``); KeyError otherwise."""
    return _BY_NAME[name]
