"""A body over PROMPT_MIDDLEWARE_MAX_BODY_BYTES is a 413."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from prompt_middleware import Settings
from tests.doors.transport.helpers import CHAT_URL, MakeClient, error_body, http_client_of


async def test_body_over_the_limit_is_a_413(make_client: MakeClient) -> None:
    client = make_client(Settings(default_store="mem", max_body_bytes=64))
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x" * 100}]
        )
    assert caught.value.status_code == 413
    assert error_body(caught.value)["code"] == "request_too_large"

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b" " * 16

    response = await http_client_of(client).post(CHAT_URL, content=endless())
    assert response.status_code == 413
