"""Settings from an injected environ: every variable read, typed and checked once."""

from __future__ import annotations

import pytest

from prompt_middleware import ConfigurationError, Secret, Settings
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
