"""Fixtures the store suites share: a store over its fake service, and a respx router.

A suite for one store sets ``kind`` (``tests/stores/kinds.py``); a suite that does not is
run against every HTTP store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
import respx

from tests.fakes.mock_http import mock_httpx2
from tests.stores.kinds import HTTP_KINDS, HttpKind


@pytest.fixture(params=HTTP_KINDS, ids=lambda kind: kind.name)
def kind(request: pytest.FixtureRequest) -> HttpKind:
    result: HttpKind = request.param
    return result


@pytest.fixture
def fake(kind: HttpKind) -> Any:
    return kind.make_fake()


@pytest.fixture
async def client(fake: Any) -> AsyncIterator[httpx2.AsyncClient]:
    """A client whose requests reach the fake service in process."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.app)) as client:
        yield client


@pytest.fixture
def store(kind: HttpKind, client: httpx2.AsyncClient) -> Any:
    return kind.make_store(client)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with mock_httpx2() as router:
        yield router


@pytest.fixture
async def mocked_store(kind: HttpKind, mock: respx.MockRouter) -> AsyncIterator[Any]:
    """The store over a plain client, for tests that answer with ``mock``."""
    async with httpx2.AsyncClient() as client:
        yield kind.make_store(client)
