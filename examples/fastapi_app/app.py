"""A FastAPI service with PromptMiddleware in front of its own LLM endpoint and a forwarder.

* ``POST /v1/chat/completions`` is the service's own internal LLM endpoint (here a stand-in
  that answers with what it received); the middleware rewrites managed requests before it.
* ``/proxy/v1/...`` is the embedded forwarder, mounted as a second route: managed requests
  to ``/proxy/v1/chat/completions`` are rewritten, then sent on to
  ``PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL`` (an OpenAI-compatible API), streaming the answer.

Run it from the repository root with ``.venv/bin/python examples/fastapi_app/app.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import uvicorn
from fastapi import FastAPI, Request

from prompt_middleware import PromptMiddleware, Settings
from prompt_middleware.sidecar.forwarder import Forwarder

PROMPTS = Path(__file__).resolve().parent.parent / "starlette_app" / "prompts"
ROUTES = "/v1/chat/completions,/proxy/v1/chat/completions"


def create_app(environ: dict[str, str] | None = None) -> FastAPI:
    """The service; settings from ``environ`` (the process environment by default)."""
    defaults = {
        "PROMPT_MIDDLEWARE_PROMPTS_DIR": str(PROMPTS),
        "PROMPT_MIDDLEWARE_ROUTES": ROUTES,
        # Without a real upstream the proxy route forwards to this service's own endpoint.
        "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL": "http://127.0.0.1:8000/v1",
    }
    settings = Settings.from_env({**defaults, **(os.environ if environ is None else environ)})
    forwarder = Forwarder(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # A mounted app gets no lifespan of its own: close its connection pool here.
        await forwarder.aclose()

    app = FastAPI(title="prompt-middleware FastAPI example", lifespan=lifespan)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> dict[str, Any]:
        """The service's internal LLM stand-in: a chat.completion echoing its request."""
        received = await request.json()
        return {
            "id": "chatcmpl-fastapi-example",
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
        }

    app.mount("/proxy", forwarder)
    app.add_middleware(PromptMiddleware, settings=settings)
    return app


app = create_app()

if __name__ == "__main__":
    uvicorn.run(
        app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000"))
    )
