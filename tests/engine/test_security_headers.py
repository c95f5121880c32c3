"""``x-prompt-name`` carries any prompt name as printable ASCII without CR/LF (property tests)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Final
from urllib.parse import unquote

import httpx2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from prompt_middleware import PromptMiddleware, Settings
from prompt_middleware.prompts import Prompt
from tests.conftest import RecordingApp
from tests.engine.fake_servers import (
    URL,
    client_for,
)
from tests.fakes.memory import MemoryStore

HEADERS_OF_A_MANAGED_ANSWER: Final = {
    b"content-type",
    b"content-length",
    b"x-prompt-name",
    b"x-prompt-version",
    b"x-prompt-store",
    b"x-prompt-cache",
    b"x-prompt-middleware-overhead-ms",
}
PRINTABLE_ASCII: Final = re.compile(rb"[\x20-\x7e]*")
# RFC 9110 field-value, as h11 enforces it: no leading or trailing whitespace.
FIELD_VALUE: Final = re.compile(rb"[^\x00\s]+(?:[ \t]+[^\x00\s]+)*")


@pytest.fixture
async def header_rig() -> AsyncIterator[tuple[httpx2.AsyncClient, MemoryStore]]:
    store = MemoryStore()
    middleware = PromptMiddleware(
        RecordingApp(), Settings(default_store="mem"), stores={"mem": store}
    )
    async with client_for(middleware) as client:
        yield client, store
    await middleware.engine.aclose()


async def served_headers(
    rig: tuple[httpx2.AsyncClient, MemoryStore], name: str, version: int | str
) -> list[tuple[bytes, bytes]]:
    client, store = rig
    # A label of its own for each example, so that no example is served another's cache entry.
    label = f"l{len(store.calls)}"
    store.prompts = [Prompt(name=name, version=version, type="text", prompt="x", labels=(label,))]
    response = await client.post(URL, json={"model": "m", "prompt_id": name, "prompt_label": label})
    assert response.status_code == 200
    raw: list[tuple[bytes, bytes]] = response.headers.raw
    return raw


# Names that begin or end with a space are the subject of test_prompt_headers_are_valid_...
NAMES: Final = st.text(min_size=1, max_size=60).filter(lambda name: name.strip(" ") == name)
HEADER_SETTINGS: Final = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@HEADER_SETTINGS
@given(name=NAMES, version=st.integers(min_value=1, max_value=10**6) | st.text(min_size=1))
@example(name="evil\r\nset-cookie: x=1", version=1)
@example(name="a\nb\rc\x00d\x7fe\u2028f\u0085g", version="prv_\r\nx-injected: 1")
@example(name="caf\u00e9 \U0001f600 %41", version=2)
async def test_prompt_headers_are_printable_ascii_and_round_trip(
    header_rig: tuple[httpx2.AsyncClient, MemoryStore], name: str, version: int | str
) -> None:
    headers = await served_headers(header_rig, name, version)
    assert {key for key, _ in headers} == HEADERS_OF_A_MANAGED_ANSWER  # nothing injected
    for _, value in headers:
        assert PRINTABLE_ASCII.fullmatch(value), value
    values = dict(headers)
    assert unquote(values[b"x-prompt-name"].decode("ascii")) == name
    assert unquote(values[b"x-prompt-version"].decode("ascii")) == str(version)


@HEADER_SETTINGS
@given(name=st.text(min_size=1, max_size=30))
@example(name="greeting ")
async def test_prompt_headers_are_valid_field_values(
    header_rig: tuple[httpx2.AsyncClient, MemoryStore], name: str
) -> None:
    for _, value in await served_headers(header_rig, name, 1):
        assert FIELD_VALUE.fullmatch(value), value
