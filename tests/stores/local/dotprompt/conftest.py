"""Fixtures of the ``.prompt`` tests: a copy of LiteLLM's dotprompt folder, and a client that
sends requests through the middleware to a recording app."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx2
import pytest

from prompt_middleware import Settings
from tests.conftest import ClientFactory

PROMPTS = Path(__file__).parent / "prompts"


@pytest.fixture
def litellm_folder(tmp_path: Path) -> Path:
    """A copy of ``prompts/``: LiteLLM's dotprompt test folder and README examples."""
    shutil.copytree(PROMPTS, tmp_path / "prompts")
    return tmp_path / "prompts"


@pytest.fixture
def client(make_client: ClientFactory, litellm_folder: Path) -> httpx2.AsyncClient:
    return make_client(Settings(prompts_dir=str(litellm_folder)))
