"""The LiteLLM-style config file: model_list, prompts and general_settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from prompt_middleware import ConfigurationError, ModelEntry, Secret, Settings

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
