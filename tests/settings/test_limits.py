"""The limits have defaults and settings (README, "Configuration")."""

from __future__ import annotations

import pytest

from prompt_middleware import ConfigurationError, Settings


def test_the_limits_have_defaults_and_settings() -> None:
    defaults = Settings.from_env({})
    assert (
        defaults.max_body_bytes,
        defaults.max_variables,
        defaults.max_variables_bytes,
        defaults.max_variables_depth,
        defaults.max_rendered_chars,
    ) == (16 * 1024 * 1024, 256, 1024 * 1024, 32, 4 * 1024 * 1024)
    configured = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_MAX_BODY_BYTES": "1000",
            "PROMPT_MIDDLEWARE_MAX_VARIABLES": "3",
            "PROMPT_MIDDLEWARE_MAX_VARIABLES_BYTES": "100",
            "PROMPT_MIDDLEWARE_MAX_VARIABLES_DEPTH": "2",
            "PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS": "50",
        }
    )
    assert (
        configured.max_body_bytes,
        configured.max_variables,
        configured.max_variables_bytes,
        configured.max_variables_depth,
        configured.max_rendered_chars,
    ) == (1000, 3, 100, 2, 50)
    for name in ("MAX_BODY_BYTES", "MAX_VARIABLES_DEPTH"):
        with pytest.raises(ConfigurationError, match=f"PROMPT_MIDDLEWARE_{name}="):
            Settings.from_env({f"PROMPT_MIDDLEWARE_{name}": "0"})
