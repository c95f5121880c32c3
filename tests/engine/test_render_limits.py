"""The rendered prompt size limit (``PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS``), which repeated
variables cannot multiply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.engine.limits import (
    LimitsClient,
    check_limit,
    limits_clients,
)


@pytest.fixture
async def limits_client() -> AsyncIterator[LimitsClient]:
    async with limits_clients() as make:
        yield make


@pytest.mark.parametrize(
    ("body", "allowed"),
    [
        ({"prompt_id": "greeting", "prompt_variables": {"name": "x" * 44}}, True),  # 6 + 44
        ({"prompt_id": "greeting", "prompt_variables": {"name": "x" * 45}}, False),
        ({"prompt_id": "echo", "prompt_variables": {"x": "x" * 5}}, True),  # 10 x 5
        ({"prompt_id": "echo", "prompt_variables": {"x": "x" * 6}}, False),
        (
            {
                "prompt_id": "shots",
                "prompt_variables": {"examples": [{"role": "user", "content": "x" * 49}]},
            },
            True,  # "S" + 49
        ),
        (
            {
                "prompt_id": "shots",
                "prompt_variables": {"examples": [{"role": "user", "content": "x" * 50}]},
            },
            False,
        ),
    ],
)
async def test_rendered_prompt_size_limit(
    limits_client: LimitsClient, body: dict[str, Any], allowed: bool
) -> None:
    await check_limit(
        limits_client(max_rendered_chars=50), body, allowed, "PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS"
    )


async def test_a_variable_repeated_cannot_multiply_the_default_limit(
    limits_client: LimitsClient,
) -> None:
    # 10 copies of 1 MiB - 20 bytes: within every input limit, ten times what may be rendered.
    value = "x" * (1024 * 1024 - 20)
    await check_limit(
        limits_client(),
        {"prompt_id": "echo", "prompt_variables": {"x": value}},
        False,
        "PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS",
    )
