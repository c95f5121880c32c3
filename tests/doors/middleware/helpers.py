"""What the middleware's tests share: the route, a poster, an unmanaged body, error reading."""

from __future__ import annotations

import json
from typing import Any

import httpx2

URL = "/v1/chat/completions"


def post(
    client: httpx2.AsyncClient, body: Any, url: str = URL, headers: dict[str, str] | None = None
) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        url, content=content, headers={"content-type": "application/json", **(headers or {})}
    )


UNMANAGED = (
    b'{ "model" : "gpt-4o",\n "messages": [{"role":"user","content":"caf\\u00e9 \xc3\xa9"}],'
    b' "seed": 12345678901234567890123, "temperature": 1e-7, "x": {"y": [1, {"z": null}]} }'
)


def error_of(response: httpx2.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = body["error"]
    return error
