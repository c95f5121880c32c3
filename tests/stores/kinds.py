"""The three HTTP stores as the store tests build them: each with its fake service.

One :class:`HttpKind` per store; ``tests/stores/conftest.py`` turns it into the ``fake``,
``client``, ``store`` and ``mocked_store`` fixtures, so the store suites share one copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from prompt_middleware.prompts import PromptQuery
from prompt_middleware.stores.base import PromptStore
from prompt_middleware.stores.generic import GenericPromptStore
from prompt_middleware.stores.humanloop import HumanloopStore
from prompt_middleware.stores.langfuse import LangfuseStore
from tests.fakes.generic_prompts import FakeGenericPromptServer
from tests.fakes.humanloop import FakeHumanloop
from tests.fakes.langfuse import FakeLangfuse

LANGFUSE_PUBLIC_KEY = "pk-lf-1234567890"
LANGFUSE_SECRET_KEY = "sk-lf-0987654321-very-secret"
LANGFUSE_BASE_URL = "http://langfuse.test"
HUMANLOOP_API_KEY = "hl_sk_0123456789abcdef-very-secret"
HUMANLOOP_BASE_URL = "http://humanloop.test/v5"
GENERIC_API_KEY = "sk-prompts-0123456789-very-secret"
GENERIC_API_BASE = "http://prompts.test"


@dataclass(frozen=True, slots=True)
class HttpKind:
    """One HTTP store: how to build it and its fake, and the words its errors use."""

    name: str
    make_fake: Callable[[], Any]  # a fake service: tests/fakes/ (with FaultKnobs)
    build: Callable[..., PromptStore]  # the store's constructor
    settings: dict[str, Any]  # what make_store passes unless told otherwise
    seed: Callable[[Any, str, str], PromptQuery]  # put a production prompt, and ask for it
    host: str
    refused: str  # "refused <this> (HTTP 401)"
    check_base_url: str  # the hint of a 404 that is not the service's
    base_url_key: str  # the constructor's name for the base URL
    base_url_named: str  # how a start-up error names it

    def make_store(self, client: httpx2.AsyncClient | None, **options: Any) -> Any:
        """The store over ``client`` with no retry backoff; ``options`` override settings."""
        settings = {**self.settings, "retry_backoff": 0.0, "client": client}
        settings.update(options)
        return self.build(**settings)


def _seed_langfuse(fake: FakeLangfuse, name: str, text: str) -> PromptQuery:
    fake.add_prompt(name, text, labels=["production"])
    return PromptQuery(name)


def _seed_humanloop(fake: FakeHumanloop, name: str, text: str) -> PromptQuery:
    prompt_id, _ = fake.add_prompt(name, text, deploy_to=["production"])
    return PromptQuery(prompt_id)


def _seed_generic(fake: FakeGenericPromptServer, name: str, text: str) -> PromptQuery:
    fake.add_prompt(name, [{"role": "user", "content": text}])
    return PromptQuery(name)


LANGFUSE = HttpKind(
    name="langfuse",
    make_fake=lambda: FakeLangfuse(public_key=LANGFUSE_PUBLIC_KEY, secret_key=LANGFUSE_SECRET_KEY),
    build=LangfuseStore,
    settings={
        "base_url": LANGFUSE_BASE_URL,
        "public_key": LANGFUSE_PUBLIC_KEY,
        "secret_key": LANGFUSE_SECRET_KEY,
    },
    seed=_seed_langfuse,
    host="langfuse.test",
    refused="the credentials",
    check_base_url="check LANGFUSE_BASE_URL",
    base_url_key="base_url",
    base_url_named="The Langfuse base URL",
)
HUMANLOOP = HttpKind(
    name="humanloop",
    make_fake=lambda: FakeHumanloop(api_key=HUMANLOOP_API_KEY),
    build=HumanloopStore,
    settings={"base_url": HUMANLOOP_BASE_URL, "api_key": HUMANLOOP_API_KEY},
    seed=_seed_humanloop,
    host="humanloop.test",
    refused="the API key",
    check_base_url="check HUMANLOOP_BASE_URL",
    base_url_key="base_url",
    base_url_named="The Humanloop base URL",
)
GENERIC = HttpKind(
    name="generic",
    make_fake=lambda: FakeGenericPromptServer(api_key=GENERIC_API_KEY),
    build=GenericPromptStore,
    settings={"api_base": GENERIC_API_BASE, "api_key": GENERIC_API_KEY},
    seed=_seed_generic,
    host="prompts.test",
    refused="the API key",
    check_base_url="check that api_base serves",
    base_url_key="api_base",
    base_url_named="api_base",
)
HTTP_KINDS = [LANGFUSE, HUMANLOOP, GENERIC]
