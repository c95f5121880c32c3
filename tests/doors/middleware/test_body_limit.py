"""A body over PROMPT_MIDDLEWARE_MAX_BODY_BYTES is a 413, declared or not."""

from __future__ import annotations

import json
from typing import Any

from prompt_middleware import Settings
from tests.conftest import ClientFactory, RecordingApp
from tests.doors.middleware.helpers import URL, error_of, post
from tests.fakes.memory import MemoryStore


async def test_body_over_the_limit_is_413(
    make_client: ClientFactory, store: MemoryStore, app: RecordingApp
) -> None:
    client = make_client(Settings(default_store="mem", max_body_bytes=100), stores={"mem": store})
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 200}]})
    response = await post(client, big.encode())
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"

    async def chunks() -> Any:  # no content-length: the cap applies while reading
        for _ in range(5):
            yield b"x" * 30

    response = await client.post(URL, content=chunks())
    assert response.status_code == 413
    assert app.requests == []
