"""A fake upstream on a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream


@pytest.fixture
def fake() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
async def upstream(fake: FakeUpstream) -> AsyncIterator[str]:
    """The fake upstream's base URL, OpenAI-style (ends in /v1)."""
    async with serve_in_background(fake) as url:
        yield f"{url}/v1"
