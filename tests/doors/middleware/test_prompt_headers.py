"""The x-prompt-* response headers of a managed request."""

from __future__ import annotations

import httpx2

from prompt_middleware import Settings
from tests.conftest import ClientFactory, RecordingApp
from tests.doors.middleware.helpers import post
from tests.fakes.memory import MemoryStore, text_prompt


async def test_cache_header_reports_hits(client: httpx2.AsyncClient, store: MemoryStore) -> None:
    body = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "G"}}
    statuses = [(await post(client, body)).headers["x-prompt-cache"] for _ in range(3)]
    assert statuses == ["miss", "hit", "hit"]
    assert store.total_calls == 1


async def test_prompt_name_header_cannot_be_split(
    make_client: ClientFactory, app: RecordingApp
) -> None:
    store = MemoryStore(text_prompt("evil\r\nset-cookie: x=1 é", "text"))
    client = make_client(Settings(default_store="mem"), stores={"mem": store})
    response = await post(client, {"model": "m", "prompt_id": "evil\r\nset-cookie: x=1 é"})
    assert response.headers["x-prompt-name"] == "evil%0D%0Aset-cookie:%20x=1%20%C3%A9"
    assert "set-cookie" not in response.headers
