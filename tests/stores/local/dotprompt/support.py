"""Requests as a LiteLLM user writes them for a ``.prompt`` file."""

from __future__ import annotations

from typing import Any

import httpx2

URL = "/v1/chat/completions"


async def send(client: httpx2.AsyncClient, prompt_id: str, **fields: Any) -> httpx2.Response:
    """A chat request naming ``prompt_id`` in LiteLLM's dotprompt store."""
    body = {"model": "dotprompt/gpt-4o-mini", "prompt_id": prompt_id, **fields}
    return await client.post(URL, json=body)
