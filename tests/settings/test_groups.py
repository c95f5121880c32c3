"""Each part's options are derived from the settings in one place, and loading settings only
logs: it neither prints nor configures logging (where a log line goes is the application's
choice; the CLI sends it to stderr so its JSON output stays clean)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import structlog

from prompt_middleware.cache import CachePolicy
from prompt_middleware.render import RenderOptions
from prompt_middleware.settings import Settings


def test_render_options_come_from_the_engine_fields() -> None:
    settings = Settings(
        text_prompt_role="system",
        messages_placeholder="history",
        client_messages="append",
        strict_variables=True,
        max_rendered_chars=10,
    )
    assert settings.render_options == RenderOptions(
        text_prompt_role="system",
        messages_placeholder="history",
        client_messages="append",
        strict_variables=True,
        max_rendered_chars=10,
    )


def test_cache_policies_for_remote_stores_and_for_files() -> None:
    settings = Settings(cache_ttl_seconds=30, cache_max_stale_seconds=90)
    assert settings.cache_policy == CachePolicy(ttl_seconds=30, max_stale_seconds=90)
    assert settings.file_cache_policy == CachePolicy(
        ttl_seconds=0.5,
        max_stale_seconds=90,
        versions_are_immutable=False,
        revalidate_in_background=False,
    )
    assert Settings(cache_ttl_seconds=0).file_cache_policy.ttl_seconds == 0


def test_a_warning_while_loading_goes_to_the_logger_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("litellm_settings: {drop_params: true}\nmodel_list: []\n")
    handlers = list(logging.getLogger().handlers)
    structlog_config = structlog.get_config()
    with structlog.testing.capture_logs() as logs:
        Settings.from_env({"PROMPT_MIDDLEWARE_CONFIG": str(path)})
    assert [log["event"] for log in logs] == ["config_sections_ignored"]
    assert capsys.readouterr() == ("", "")
    assert logging.getLogger().handlers == handlers
    assert structlog.get_config() == structlog_config
