"""OpenAI's Chat Completions API (``POST …/chat/completions``): the request as the engine has
always read it. A prompt config holds its parameters under their own names; the prompt's
messages, system ones included, replace the client's ``messages`` (README, "How a request is
rewritten")."""

from __future__ import annotations

from typing import Final

from prompt_middleware.apis.base import Api
from prompt_middleware.parameters import CHAT_COMPLETION_PARAMETERS

__all__ = ["CHAT", "ChatCompletions"]


class ChatCompletions(Api):
    name = "chat"
    route_suffix = "/chat/completions"
    provider = "openai"
    conversation = "messages"
    system_slot = None
    default_client_messages = "ignore"
    native_parameters = CHAT_COMPLETION_PARAMETERS


CHAT: Final = ChatCompletions()
