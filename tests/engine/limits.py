"""Shared by the limit tests: a middleware client over a memory store, bodies of a given size,
and the check that a limit refuses with the setting it names."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2

from prompt_middleware import PromptMiddleware, Settings
from tests.conftest import RecordingApp
from tests.engine.fake_servers import URL, client_for, error_of
from tests.fakes.memory import MemoryStore, chat_prompt, text_prompt


def limits_store() -> MemoryStore:
    return MemoryStore(
        text_prompt("greeting", "Hello {{name}}"),
        chat_prompt("shots", [("system", "S"), "examples"]),
        text_prompt("echo", "{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}"),
    )


LimitsClient = Callable[..., httpx2.AsyncClient]


@contextlib.asynccontextmanager
async def limits_clients() -> AsyncIterator[LimitsClient]:
    """``make(settings | **overrides)``: clients of middlewares over :func:`limits_store`,
    closed on exit."""
    middlewares: list[PromptMiddleware] = []
    clients: list[httpx2.AsyncClient] = []

    def make(settings: Settings | None = None, **overrides: Any) -> httpx2.AsyncClient:
        middleware = PromptMiddleware(
            RecordingApp(),
            settings or Settings(default_store="mem", **overrides),
            stores={"mem": limits_store()},
        )
        middlewares.append(middleware)
        clients.append(client_for(middleware))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()
    for middleware in middlewares:
        await middleware.engine.aclose()


def padded(size: int) -> bytes:
    """An unmanaged body of exactly ``size`` bytes."""
    head, tail = b'{"model":"gpt-4o","user":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def check_limit(
    client: httpx2.AsyncClient, body: dict[str, Any], allowed: bool, setting: str
) -> None:
    response = await client.post(URL, json={"model": "m", **body})
    assert_limit(response, allowed, setting)


def assert_limit(response: httpx2.Response, allowed: bool, setting: str) -> None:
    if allowed:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] in {"invalid_request", "invalid_prompt_request"}
    assert error["param"] == "prompt_variables"
    assert setting in error["message"]
