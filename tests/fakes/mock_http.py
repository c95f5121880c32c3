"""respx's routes on httpx2's connection pool, strict: the mock every HTTP-client test uses.

respx itself patches only httpx's pool; ``pytest-httpx2`` (by respx's author) adds a mocker
for httpcore2, under httpx2's transports. A request nobody mocked, or a mocked route nobody
called, fails the test. A route sees an ``httpx.Request`` made from what reached the pool:
``route.calls.last.request`` holds the bytes that really went out. Its answers are
``httpx.Response`` objects; a transport error is one of ``httpcore2``'s, which httpx2 turns
into its own (``httpcore2.ConnectError`` -> ``httpx2.ConnectError``).
"""

from __future__ import annotations

import pytest_httpx2  # noqa: F401  (registers the "httpcore2" mocker respx.mock uses below)
import respx

__all__ = ["mock_httpx2"]


def mock_httpx2() -> respx.MockRouter:
    """A strict router for every httpx2 client's requests while it is entered (``with``)."""
    return respx.mock(using="httpcore2", assert_all_called=True, assert_all_mocked=True)
