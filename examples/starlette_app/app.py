"""A Starlette service whose internal LLM-style endpoint sits behind PromptMiddleware.

The endpoint answers with what it received, so each response shows the rewritten request.
Run it from the repository root with ``python examples/starlette_app/app.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from prompt_middleware import PromptMiddleware, Settings

PROMPTS = Path(__file__).parent / "prompts"


async def chat_completions(request: Request) -> JSONResponse:
    """A stand-in for an internal LLM: a chat.completion whose content is the request it got."""
    received = await request.json()
    return JSONResponse(
        {
            "id": "chatcmpl-example",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": received.get("model", "unknown"),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": msgspec.json.encode(received).decode(),
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    )


def create_app() -> PromptMiddleware:
    """The service wrapped by the middleware, reading this example's prompt folder by default."""
    service = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])
    environ = {"PROMPT_MIDDLEWARE_PROMPTS_DIR": str(PROMPTS), **os.environ}
    return PromptMiddleware(service, Settings.from_env(environ))


app = create_app()

if __name__ == "__main__":
    uvicorn.run(
        app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000"))
    )
