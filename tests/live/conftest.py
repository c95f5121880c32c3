"""A real redis-server per test that asks for one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.redis_server import RedisServer, SilentRedis


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def silent_redis() -> Iterator[SilentRedis]:
    server = SilentRedis()
    try:
        yield server
    finally:
        server.close()
