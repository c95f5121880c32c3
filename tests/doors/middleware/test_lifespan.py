"""Lifespan: prompts prewarmed before start-up completes, stores closed at shutdown."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.types import Message, Receive, Scope, Send

from prompt_middleware import PromptMiddleware, Settings
from tests.fakes.memory import MemoryStore


async def test_lifespan_prewarms_before_startup_and_closes_stores(store: MemoryStore) -> None:
    events: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            events.append(f"{message['type']} (store calls: {store.total_calls})")
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    middleware = PromptMiddleware(
        inner,
        Settings(default_store="mem", prewarm=("greeting", "greeting@staging", "nope")),
        stores={"mem": store},
    )
    inbox: Iterator[Message] = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[Message] = []

    async def receive() -> Message:
        return next(inbox)

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware({"type": "lifespan"}, receive, send)
    assert events == ["lifespan.startup (store calls: 3)", "lifespan.shutdown (store calls: 3)"]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert store.closed
