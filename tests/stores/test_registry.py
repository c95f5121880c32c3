"""Which store serves a request: prefix, model-list entry, ``prompts:`` binding, default store.

Humanloop and LiteLLM's generic prompt API are fakes served by uvicorn on 127.0.0.1; every
assertion is on the bytes the wrapped app receives and the requests the fakes counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from prompt_middleware import ConfigurationError, PromptMiddleware, Secret, Settings
from tests.conftest import RecordingApp
from tests.fakes.generic_prompts import FakeGenericPromptServer
from tests.fakes.humanloop import FakeHumanloop
from tests.fakes.server import serve_in_background

URL = "/v1/chat/completions"
HUMANLOOP_KEY = "hl_sk_e2e"


@pytest.fixture
async def humanloop() -> AsyncIterator[tuple[FakeHumanloop, str]]:
    fake = FakeHumanloop(api_key=HUMANLOOP_KEY)
    fake.add_prompt(
        "support/answer",
        [{"role": "system", "content": "You support {{product}}."}],
        model="gpt-4o",
        deploy_to=["production"],
        temperature=0.3,
    )
    fake.add_prompt(
        "tagline", "A tagline for {{product}}", model="gpt-4o-mini", deploy_to=["production"]
    )
    async with serve_in_background(fake.app) as url:
        yield fake, url + "/v5"


@pytest.fixture
async def generic() -> AsyncIterator[tuple[FakeGenericPromptServer, str]]:
    fake = FakeGenericPromptServer(api_key="generic-key")
    fake.add_prompt(
        "hello-world-prompt",
        [
            {"role": "system", "content": "You are an expert in {domain}. Be {{tone}}."},
            {"role": "user", "content": "{question}"},
        ],
        model="gpt-4.1",
        optional_params={"temperature": 0.1, "max_tokens": 50},
    )
    async with serve_in_background(fake.app) as url:
        yield fake, url


async def post(app: PromptMiddleware, body: dict[str, Any]) -> httpx2.Response:
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://test"
    ) as client:
        return await client.post(URL, json=body)


async def test_humanloop_prefix_text_and_chat_prompts_through_the_cache(
    humanloop: tuple[FakeHumanloop, str],
) -> None:
    fake, base_url = humanloop
    app = RecordingApp()
    middleware = PromptMiddleware(
        app, Settings(humanloop_api_key=Secret(HUMANLOOP_KEY), humanloop_base_url=base_url)
    )
    body = {
        "model": "humanloop/gpt-4o",
        "prompt_id": "support/answer",
        "prompt_variables": {"product": "Acme"},
        "temperature": 0.9,
    }
    first = await post(middleware, body)
    second = await post(middleware, body)
    # Humanloop's explicit defaults (top_p 1, penalties 0) are the prompt's parameters too.
    assert app.last.json() == {
        "model": "gpt-4o",
        "temperature": 0.3,
        "top_p": 1,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "messages": [{"role": "system", "content": "You support Acme."}],
    }
    assert (first.headers["x-prompt-store"], first.headers["x-prompt-cache"]) == (
        "humanloop",
        "miss",
    )
    assert second.headers["x-prompt-cache"] == "hit"
    assert first.headers["x-prompt-version"].startswith("prv_")
    assert fake.fetch_count == 1
    await post(
        middleware,
        {"model": "humanloop/x", "prompt_id": "tagline", "prompt_variables": {"product": "Acme"}},
    )
    assert app.last.json()["messages"] == [{"role": "user", "content": "A tagline for Acme"}]
    assert app.last.json()["model"] == "gpt-4o-mini"
    assert all(r.api_key == HUMANLOOP_KEY for r in fake.requests)
    await middleware.engine.aclose()


LITELLM_CONFIG = """
model_list:
  - model_name: gpt-4.1
    litellm_params:
      model: openai/gpt-4.1
      api_key: os.environ/OPENAI_API_KEY
prompts:
  - prompt_id: hello-world-prompt
    litellm_params:
      prompt_integration: generic_prompt_management
      api_base: {api_base}
      api_key: os.environ/PROMPT_API_KEY
      provider_specific_query_params:
        project: internal
        version: 2
  - prompt_id: kept-model
    litellm_params:
      prompt_integration: generic_prompt_management
      api_base: {api_base}
      api_key: os.environ/PROMPT_API_KEY
      ignore_prompt_manager_model: true
      ignore_prompt_manager_optional_params: true
litellm_settings:
  callbacks: ["generic_prompt_management"]
"""


async def test_a_litellm_config_with_prompts_section_routes_unchanged(
    generic: tuple[FakeGenericPromptServer, str], tmp_path: Path
) -> None:
    fake, api_base = generic
    fake.add_prompt(
        "kept-model",
        [{"role": "user", "content": "Hi {name}"}],
        model="gpt-5",
        optional_params={"temperature": 1.5},
    )
    config = tmp_path / "config.yaml"
    config.write_text(LITELLM_CONFIG.format(api_base=api_base))
    settings = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_CONFIG": str(config),
            "OPENAI_API_KEY": "sk-openai",
            "PROMPT_API_KEY": "generic-key",
        }
    )
    app = RecordingApp()
    middleware = PromptMiddleware(app, settings)
    response = await post(
        middleware,
        {
            "model": "gpt-4.1",
            "prompt_id": "hello-world-prompt",
            "prompt_variables": {"domain": "tax", "tone": "brief", "question": "VAT?"},
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-prompt-store"] == "http"
    assert app.last.json() == {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "You are an expert in tax. Be brief."},
            {"role": "user", "content": "VAT?"},
        ],
        "temperature": 0.1,
        "max_tokens": 50,
    }
    request = fake.requests[-1]
    assert list(request.query) == [
        ("prompt_id", "hello-world-prompt"),
        ("project", "internal"),
        ("version", "2"),
    ]
    assert request.authorization == "Bearer generic-key"

    await post(
        middleware,
        {
            "model": "my-model",
            "prompt_id": "kept-model",
            "prompt_variables": {"name": "Al"},
            "temperature": 0.2,
        },
    )
    assert app.last.json() == {
        "model": "my-model",
        "temperature": 0.2,
        "messages": [{"role": "user", "content": "Hi Al"}],
    }
    await middleware.engine.aclose()


async def test_a_store_prefix_beats_a_prompts_binding(
    generic: tuple[FakeGenericPromptServer, str], tmp_path: Path
) -> None:
    fake, api_base = generic
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "hello-world-prompt.yaml").write_text("prompt: From the folder\n")
    config = tmp_path / "config.yaml"
    config.write_text(LITELLM_CONFIG.format(api_base=api_base))
    settings = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_CONFIG": str(config),
            "PROMPT_MIDDLEWARE_PROMPTS_DIR": str(tmp_path / "prompts"),
            "OPENAI_API_KEY": "k",
            "PROMPT_API_KEY": "generic-key",
        }
    )
    app = RecordingApp()
    middleware = PromptMiddleware(app, settings)
    response = await post(middleware, {"model": "file/m", "prompt_id": "hello-world-prompt"})
    assert response.headers["x-prompt-store"] == "file"
    assert app.last.json()["messages"] == [{"role": "user", "content": "From the folder"}]
    assert fake.requests == []
    await middleware.engine.aclose()


async def test_default_store_and_custom_store_from_settings(tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text("prompt: Hello {{name}} from the folder\n")
    app = RecordingApp()
    settings = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_PROMPTS_DIR": str(tmp_path),
            "PROMPT_MIDDLEWARE_STORES": "mystore=tests.fakes.memory:greeting_store",
        }
    )
    middleware = PromptMiddleware(app, settings)
    body = {"model": "gpt-4o", "prompt_id": "hello", "prompt_variables": {"name": "Di"}}
    assert (await post(middleware, body)).headers["x-prompt-store"] == "file"
    assert app.last.json()["messages"][0]["content"] == "Hello Di from the folder"
    response = await post(middleware, {**body, "model": "mystore/gpt-4o"})
    assert response.headers["x-prompt-store"] == "mystore"
    assert app.last.json()["messages"][0]["content"] == "Hello Di from my store"
    defaulted = PromptMiddleware(
        app,
        Settings(default_store="mystore", stores=("mystore=tests.fakes.memory:greeting_store",)),
    )
    assert (await post(defaulted, body)).headers["x-prompt-store"] == "mystore"
    await middleware.engine.aclose()
    await defaulted.engine.aclose()


@pytest.mark.parametrize(
    ("model", "fragment"),
    [("humanloop/gpt-4o", "HUMANLOOP_API_KEY"), ("langfuse/gpt-4o", "LANGFUSE_PUBLIC_KEY")],
)
async def test_a_prefix_naming_an_unconfigured_store_is_a_400(model: str, fragment: str) -> None:
    middleware = PromptMiddleware(RecordingApp(), Settings())
    response = await post(middleware, {"model": model, "prompt_id": "x"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_prompt_request", "model")
    assert fragment in error["message"]
    await middleware.engine.aclose()


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("nonsense", "prefix=package.module:factory"),
        ("x=no.such.module:thing", "cannot be imported"),
        ("x=tests.fakes.memory:text_prompt_missing", "cannot be imported"),
        ("x=builtins:object", "lacks the PromptStore methods"),
    ],
)
def test_bad_custom_store_settings_fail_at_start_up(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        PromptMiddleware(RecordingApp(), Settings(stores=(spec,)))


def test_a_prompts_binding_to_an_unconfigured_store_fails_at_start_up(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "prompts:\n  - prompt_id: p\n    litellm_params:\n      prompt_integration: langfuse\n"
    )
    settings = Settings.from_env({"PROMPT_MIDDLEWARE_CONFIG": str(config)})
    with pytest.raises(ConfigurationError, match="LANGFUSE_PUBLIC_KEY"):
        PromptMiddleware(RecordingApp(), settings)
