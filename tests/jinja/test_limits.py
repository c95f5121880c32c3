"""A small request cannot make a Jinja render build gigabytes: repetition, powers, output."""

from __future__ import annotations

from typing import Any

import pytest

from prompt_middleware.errors import InvalidPromptRequest
from prompt_middleware.jinja import RenderFailed, TooLarge, compile_jinja
from prompt_middleware.prepare import prepare_prompt
from prompt_middleware.prompts import Prompt
from prompt_middleware.render import RenderOptions


def render(source: str, variables: dict[str, Any], limit: int | None = None) -> list[Any]:
    template = compile_jinja(source, split_roles=True)
    return list(template.render(variables, limit).messages)


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        ("{{ '-' * n }}", {"n": 10**9}),
        ("{{ items * n }}", {"items": [1, 2], "n": 10**9}),
        ("{{ 10 ** n }}", {"n": 10**9}),
        ("{% for a in xs %}{% for b in xs %}{{ a }}{% endfor %}{% endfor %}", {"xs": [0] * 400}),
        (
            "{% set s %}{% for a in xs %}{% for b in xs %}{{ big }}{% endfor %}{% endfor %}"
            "{% endset %}",
            {"xs": [0] * 400, "big": "x" * 100},
        ),
    ],
)
def test_repetition_powers_and_loops_are_bounded(source: str, variables: dict[str, Any]) -> None:
    with pytest.raises(RenderFailed) as caught:
        render(source, variables)
    assert not caught.value.unsafe  # a 400: the request asked for it
    assert caught.value.line == 1


def test_the_rendered_size_limit_counts_the_values() -> None:
    source = "{% for i in range(1000) %}{{ big }}{% endfor %}"
    assert len(render(source, {"big": "x" * 100})[0][1]) == 100_000
    with pytest.raises(TooLarge):
        render(source, {"big": "x" * 100}, limit=99_999)


def test_past_the_limit_is_the_same_400_as_for_any_prompt() -> None:
    source = "User: {% for i in range(10) %}{{ big }}{% endfor %}"
    prompt = Prompt(name="p", version=1, type="chat", prompt=source, template_language="dotprompt")
    prepared = prepare_prompt(prompt)
    options = RenderOptions(max_rendered_chars=999)
    assert prepared.render({"big": "x" * 99}, None, options).messages[0]["content"] == "x" * 990
    with pytest.raises(InvalidPromptRequest) as caught:
        prepared.render({"big": "x" * 100}, None, options)
    assert caught.value.message == (
        "Prompt 'p' renders larger than PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS: "
        "send smaller prompt_variables."
    )
