"""Settings from an injected environ and a LiteLLM-style config file."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from prompt_middleware import ConfigurationError, ModelEntry, Secret, Settings
from prompt_middleware.settings import DEFAULT_ROUTES


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.routes == DEFAULT_ROUTES
    assert settings.prompts_dir == "./prompts"
    assert settings.max_body_bytes == 16 * 1024 * 1024
    assert (settings.cache_ttl_seconds, settings.cache_max_stale_seconds) == (60, 86400)
    assert settings.store_timeout_seconds == 5
    assert settings.resolved_default_store == "file"
    assert settings.langfuse_base_url == "https://cloud.langfuse.com"


def test_every_variable_is_read_and_typed() -> None:
    settings = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_ROUTES": "/a, /b ,",
            "PROMPT_MIDDLEWARE_PROMPTS_DIR": "/srv/prompts",
            "PROMPT_MIDDLEWARE_DEFAULT_STORE": "file",
            "PROMPT_MIDDLEWARE_TEXT_PROMPT_ROLE": "system",
            "PROMPT_MIDDLEWARE_MESSAGES_PLACEHOLDER": "history",
            "PROMPT_MIDDLEWARE_CLIENT_MESSAGES": "append",
            "PROMPT_MIDDLEWARE_STRICT_VARIABLES": "true",
            "PROMPT_MIDDLEWARE_PARAM_PRECEDENCE": "request",
            "PROMPT_MIDDLEWARE_MAX_BODY_BYTES": "1024",
            "PROMPT_MIDDLEWARE_STORE_TIMEOUT_SECONDS": "2.5",
            "PROMPT_MIDDLEWARE_CACHE_TTL_SECONDS": "0",
            "PROMPT_MIDDLEWARE_CACHE_MAX_STALE_SECONDS": "10",
            "PROMPT_MIDDLEWARE_CACHE_MAX_ENTRIES": "5",
            "PROMPT_MIDDLEWARE_PREWARM": "a,b@staging",
            "PROMPT_MIDDLEWARE_ALLOW_REQUEST_CREDENTIALS": "1",
        }
    )
    assert settings.routes == ("/a", "/b")
    assert settings.prompts_dir == "/srv/prompts"
    assert settings.render_options.text_prompt_role == "system"
    assert settings.render_options.messages_placeholder == "history"
    assert settings.render_options.client_messages == "append"
    assert settings.render_options.strict_variables is True
    assert settings.param_precedence == "request"
    assert settings.max_body_bytes == 1024
    assert settings.store_timeout_seconds == 2.5
    assert settings.cache_ttl_seconds == 0
    assert settings.cache_max_stale_seconds == 10
    assert settings.cache_max_entries == 5
    assert settings.prewarm == ("a", "b@staging")
    assert settings.allow_request_credentials is True


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.prompts_dir = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PROMPT_MIDDLEWARE_MAX_BODY_BYTES", "lots", "Expected `int`"),
        ("PROMPT_MIDDLEWARE_MAX_BODY_BYTES", "0", ">= 1"),
        ("PROMPT_MIDDLEWARE_STORE_TIMEOUT_SECONDS", "-1", "> 0"),
        ("PROMPT_MIDDLEWARE_CACHE_TTL_SECONDS", "soon", "Expected `float`"),
        ("PROMPT_MIDDLEWARE_STRICT_VARIABLES", "maybe", "Expected `bool`"),
        ("PROMPT_MIDDLEWARE_TEXT_PROMPT_ROLE", "assistant", "Invalid enum value"),
        ("PROMPT_MIDDLEWARE_CLIENT_MESSAGES", "prepend", "Invalid enum value"),
        ("PROMPT_MIDDLEWARE_PARAM_PRECEDENCE", "both", "Invalid enum value"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({name: value})
    message = str(raised.value)
    assert message.startswith(f"{name}={value!r} is invalid")
    assert fragment in message


def test_secrets_never_print() -> None:
    settings = Settings.from_env(
        {"LANGFUSE_PUBLIC_KEY": "pk-lf-1", "LANGFUSE_SECRET_KEY": "sk-lf-very-secret"}
    )
    assert isinstance(settings.langfuse_secret_key, Secret)
    assert settings.langfuse_secret_key.get_secret_value() == "sk-lf-very-secret"
    assert "sk-lf-very-secret" not in repr(settings)
    assert "sk-lf-very-secret" not in str(settings.langfuse_secret_key)
    assert settings.resolved_default_store == "langfuse"


def test_langfuse_base_url_precedes_langfuse_host_as_in_the_sdk() -> None:
    both = {"LANGFUSE_BASE_URL": "https://eu.example", "LANGFUSE_HOST": "https://us.example"}
    assert Settings.from_env(both).langfuse_base_url == "https://eu.example"
    assert Settings.from_env({"LANGFUSE_HOST": "https://us.example"}).langfuse_base_url == (
        "https://us.example"
    )


def test_empty_variables_count_as_unset() -> None:
    assert Settings.from_env({"PROMPT_MIDDLEWARE_MAX_BODY_BYTES": ""}) == Settings()


LITELLM_CONFIG = """
model_list:
  - model_name: support-bot
    litellm_params:
      model: langfuse/gpt-4o-mini
      prompt_id: support/answer
      prompt_label: production
      api_base: https://api.openai.com/v1
      api_key: os.environ/OPENAI_API_KEY
      temperature: 0.2
      rpm: 100
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      prompt_version: 3
litellm_settings:
  drop_params: true
router_settings:
  routing_strategy: simple-shuffle
general_settings:
  master_key: sk-1234
"""


def test_a_litellm_config_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(LITELLM_CONFIG)
    with structlog.testing.capture_logs() as logs:
        settings = Settings.from_env(
            {"PROMPT_MIDDLEWARE_CONFIG": str(path), "OPENAI_API_KEY": "sk-openai-secret"}
        )
    support, plain = settings.model_list
    assert support == ModelEntry(
        model_name="support-bot",
        model="langfuse/gpt-4o-mini",
        prompt_id="support/answer",
        prompt_label="production",
        api_base="https://api.openai.com/v1",
        api_key=Secret("sk-openai-secret"),
        params={"temperature": 0.2},
    )
    assert plain == ModelEntry(model_name="gpt-4o", model="openai/gpt-4o", prompt_version=3)
    assert "sk-openai-secret" not in repr(settings)
    assert settings.api_keys == (Secret("sk-1234"),)  # general_settings.master_key
    events = {log["event"]: log for log in logs}
    assert events["config_sections_ignored"]["sections"] == ["litellm_settings", "router_settings"]
    assert events["model_entry_keys_ignored"]["keys"] == ["rpm"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("model_list: [", "not valid YAML"),
        ("- a list", "must be a YAML mapping"),
        ("model_list: {}", "model_list must be a list"),
        ("model_list:\n  - litellm_params: {model: x}", "model_list[0]: an entry needs a string"),
        ("model_list:\n  - model_name: a\n    litellm_params: {}", "litellm_params.model"),
        (
            "model_list:\n  - model_name: a\n"
            "    litellm_params: {model: x, api_key: os.environ/NOPE}",
            "reads NOPE from the environment, which is unset",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: x, prompt_version: v}",
            "model_list[0]",
        ),
    ],
)
def test_a_bad_config_file_says_where(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"PROMPT_MIDDLEWARE_CONFIG": str(path)})
    assert "PROMPT_MIDDLEWARE_CONFIG=" in str(raised.value)
    assert fragment in str(raised.value)


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the file"):
        Settings.from_env({"PROMPT_MIDDLEWARE_CONFIG": str(tmp_path / "absent.yaml")})


def test_an_empty_config_file_is_no_model_list(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("")
    assert Settings.from_env({"PROMPT_MIDDLEWARE_CONFIG": str(path)}).model_list == ()


def test_humanloop_and_custom_store_variables() -> None:
    settings = Settings.from_env(
        {
            "HUMANLOOP_API_KEY": "hl_sk_secret",
            "HUMANLOOP_BASE_URL": "http://127.0.0.1:1/v5",
            "PROMPT_MIDDLEWARE_STORES": "a=pkg.mod:make, b=pkg.other:Store",
        }
    )
    assert settings.humanloop_api_key == Secret("hl_sk_secret")
    assert settings.humanloop_base_url == "http://127.0.0.1:1/v5"
    assert settings.stores == ("a=pkg.mod:make", "b=pkg.other:Store")
    assert "hl_sk_secret" not in repr(settings)


def test_the_prompts_section_in_litellm_form(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "prompts:\n"
        "  - prompt_id: hello\n"
        "    litellm_params:\n"
        "      prompt_integration: generic_prompt_management\n"
        "      api_base: http://127.0.0.1:9/prompts\n"
        "      api_key: os.environ/PROMPTS_KEY\n"
        "      provider_specific_query_params: {project: internal, version: 2, beta: true}\n"
        "      ignore_prompt_manager_model: true\n"
        "  - prompt_id: other\n"
        "    litellm_params: {prompt_integration: dotprompt, unknown_key: 1}\n"
    )
    with structlog.testing.capture_logs() as logs:
        settings = Settings.from_env(
            {"PROMPT_MIDDLEWARE_CONFIG": str(path), "PROMPTS_KEY": "pk-secret"}
        )
    generic, dotprompt = settings.prompts
    assert generic.integration == "generic_prompt_management"
    assert generic.api_key == Secret("pk-secret")
    assert generic.query_params == {"project": "internal", "version": "2", "beta": "true"}
    assert (generic.ignore_prompt_manager_model, generic.ignore_prompt_manager_optional_params) == (
        True,
        False,
    )
    assert dotprompt.integration == "dotprompt"
    assert any(log["event"] == "prompt_binding_keys_ignored" for log in logs)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("prompts: {}", "prompts must be a list"),
        ("prompts:\n  - litellm_params: {}", "needs a string prompt_id"),
        (
            "prompts:\n  - prompt_id: p\n    litellm_params: {prompt_integration: nope}",
            "prompts[0]",
        ),
        (
            "prompts:\n  - prompt_id: p\n    litellm_params:\n"
            "      prompt_integration: generic_prompt_management",
            "needs an api_base",
        ),
    ],
)
def test_a_bad_prompts_section_says_where(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"PROMPT_MIDDLEWARE_CONFIG": str(path)})
    assert fragment in str(raised.value)
