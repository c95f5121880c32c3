"""The forwarder on its own speaks lifespan, and closes its session at shutdown."""

from __future__ import annotations

import aiohttp
import httpx2

from prompt_middleware.sidecar.forwarder import Forwarder, create_session
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream
from tests.sidecar.forwarder.helpers import settings_for


async def test_lifespan_closes_the_session(fake: FakeUpstream, upstream: str) -> None:
    settings = settings_for(upstream)
    sessions: list[aiohttp.ClientSession] = []

    def session() -> aiohttp.ClientSession:
        sessions.append(create_session(settings))
        return sessions[-1]

    forwarder = Forwarder(settings, session_factory=session)
    async with serve_in_background(forwarder, lifespan="on") as url:
        async with httpx2.AsyncClient(base_url=url) as client:
            assert (await client.get("/v1/models")).status_code == 200
        assert len(sessions) == 1
        assert not sessions[0].closed
    assert sessions[0].closed
