"""OpenAI's Chat Completions API (``POST …/chat/completions``): the request as the engine has
always read it. A prompt config holds its parameters under their own names; the prompt's
messages, system ones included, replace the client's ``messages`` (README, "How a request is
rewritten")."""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec

from prompt_middleware.apis.base import Api, pieces, sse
from prompt_middleware.parameters import CHAT_COMPLETION_PARAMETERS

__all__ = ["CHAT", "ChatCompletions"]

_encode: Final = msgspec.json.Encoder().encode


class ChatCompletions(Api):
    name = "chat"
    route_suffix = "/chat/completions"
    provider = "openai"
    conversation = "messages"
    system_slot = None
    default_client_messages = "ignore"
    native_parameters = CHAT_COMPLETION_PARAMETERS

    def echo_answer(self, answer_id: str, model: str, text: str) -> bytes:
        return _encode(
            {
                "id": answer_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        )

    def echo_events(self, answer_id: str, model: str, text: str) -> list[bytes]:
        created = int(time.time())

        def chunk(delta: dict[str, str], finish_reason: str | None = None) -> bytes:
            event: dict[str, Any] = {
                "id": answer_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            return sse(None, event)

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in pieces(text)]
        return [*events, chunk({}, "stop"), b"data: [DONE]\n\n"]


CHAT: Final = ChatCompletions()
