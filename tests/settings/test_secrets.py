"""No secret in a configuration error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from prompt_middleware import ConfigurationError, Settings
from tests.engine.fake_servers import (
    ATTACKER_SECRET,
    HUMANLOOP_KEY,
    SECRET,
    assert_no_secret,
)


def test_no_secret_in_configuration_errors(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: team\n"
        "    litellm_params:\n"
        "      model: langfuse/gpt-4o\n"
        f"      langfuse_secret: {SECRET}\n"
        f"      api_key: {ATTACKER_SECRET}\n"
        "      prompt_version: not-a-number\n"
    )
    environments = [
        {"PROMPT_MIDDLEWARE_CONFIG": str(config), "LANGFUSE_SECRET_KEY": SECRET},
        {"LANGFUSE_SECRET_KEY": SECRET, "PROMPT_MIDDLEWARE_MAX_BODY_BYTES": "lots"},
        {"PROMPT_MIDDLEWARE_UPSTREAM_API_KEY": HUMANLOOP_KEY, "PROMPT_MIDDLEWARE_PORT": "-1"},
    ]
    with structlog.testing.capture_logs() as logs:
        for environ in environments:
            with pytest.raises(ConfigurationError) as caught:
                Settings.from_env(environ)
            assert_no_secret(str(caught.value), repr(caught.value))
    assert_no_secret(json.dumps(logs, default=repr))
