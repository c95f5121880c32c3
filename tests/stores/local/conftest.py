"""Fixtures of the local-store tests: a prompt folder, a store over it, and its clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompt_middleware.stores.local import LocalPromptStore
from tests.fakes.clock import FakeClock
from tests.stores.local.support import POLL


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "prompts"
    path.mkdir()
    return path


@pytest.fixture
def store(folder: Path, clock: FakeClock) -> LocalPromptStore:
    return LocalPromptStore(folder, poll_interval=POLL, clock=clock)
