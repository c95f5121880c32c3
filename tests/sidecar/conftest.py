"""The sidecar in echo mode on a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from prompt_middleware.sidecar import Sidecar
from tests.fakes.server import serve_in_background
from tests.sidecar.helpers import ECHO


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async with serve_in_background(Sidecar(ECHO), lifespan="on") as url:
        yield url
