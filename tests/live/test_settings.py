"""The live-update settings: read from the environment, secrets kept secret, a bad Redis URL
refused at start-up without showing its password."""

from __future__ import annotations

import pytest

from prompt_middleware import ConfigurationError, Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.sidecar.helpers import run_cli


def test_the_variables_are_read_and_the_secrets_masked() -> None:
    settings = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_LANGFUSE_WEBHOOK_SECRET": "lf-whsec_s3cret",
            "PROMPT_MIDDLEWARE_REDIS_URL": "redis://:hunter2@redis.internal:6379/0",
        }
    )
    assert settings.langfuse_webhook_secret == Secret("lf-whsec_s3cret")
    assert settings.redis_url == Secret("redis://:hunter2@redis.internal:6379/0")
    assert "hunter2" not in repr(settings)
    assert "s3cret" not in repr(settings)
    assert Settings().redis_url is None
    assert Settings().worker_dir is None


@pytest.mark.parametrize(
    "url", ["http://:hunter2@redis.internal", "redis://:hunter2@redis.internal:port/0"]
)
def test_a_url_that_is_no_redis_url_stops_start_up(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Sidecar(Settings(echo=True, redis_url=Secret(url)))
    assert "PROMPT_MIDDLEWARE_REDIS_URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_serve_says_which_variable_is_wrong_and_exits() -> None:
    done = run_cli("serve", "--echo", PROMPT_MIDDLEWARE_REDIS_URL="http://:hunter2@redis")
    assert done.returncode == 2
    assert "PROMPT_MIDDLEWARE_REDIS_URL" in done.stderr
    assert "hunter2" not in done.stderr
