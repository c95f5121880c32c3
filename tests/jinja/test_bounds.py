"""Whatever a template does with a client's values, the text it makes is bounded — and refused
before it is built (README, "Prompt files"): a width, a count or a multiplied text past
PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS is a 400 naming the prompt, having allocated nothing of it.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from prompt_middleware.errors import InvalidPromptRequest
from prompt_middleware.jinja import RenderFailed, compile_jinja
from prompt_middleware.prepare import prepare_prompt
from prompt_middleware.prompts import Prompt
from prompt_middleware.render import RenderOptions

N = 5_000_000  # characters asked for: more than the 4 MiB default bound
BIG = "x" * 1000

# (template, variables): each would build millions of characters in one step.
OVERSIZED = [
    ("{% for i in range(n) %}x{% endfor %}", {"n": N}),
    ('{{ "a"|center(n) }}', {"n": N}),
    ("{{ 'a'.center(n) }}", {"n": N}),
    ("{{ 'a'.ljust(n) }}", {"n": N}),
    ("{{ 'a'.rjust(n) }}", {"n": N}),
    ("{{ 'a'.zfill(n) }}", {"n": N}),
    ("{{ '\t'.expandtabs(n) }}", {"n": N}),
    ('{{ "%*s"|format(n, "a") }}', {"n": N}),
    ('{{ "%.*f"|format(n, 1.5) }}', {"n": N}),
    ('{{ "%-5000000s"|format("a") }}', {}),
    ('{{ ("%-" ~ n ~ "s")|format("a") }}', {"n": N}),
    ('{{ "%*s" % (n, "a") }}', {"n": N}),
    ('{{ fmt % "a" }}', {"fmt": f"%{N}s"}),
    ('{{ "{:>{}}".format("a", n) }}', {"n": N}),
    ('{{ "{:05000000}".format(1) }}', {}),
    ('{{ "{:.{}f}".format(1.5, n) }}', {"n": N}),
    ('{{ "{a:{b}}".format_map({"a": "a", "b": spec}) }}', {"spec": f">{N}"}),
    ("{{ fmt.format(big) }}", {"fmt": "{0}" * 5000, "big": BIG}),
    ("{{ 'a'|indent(n, true) }}", {"n": N}),
    ("{{ text|indent(big) }}", {"text": "\n" * 5000, "big": BIG}),
    ("{{ text|wordwrap(1, wrapstring=big) }}", {"text": "a " * 5000, "big": BIG}),
    ("{{ text|replace('a', big) }}", {"text": "a" * 5000, "big": BIG}),
    ("{{ text.replace('', big) }}", {"text": "a" * 5000, "big": BIG}),
    ("{{ (items * 5000)|join }}", {"items": [BIG]}),
    ("{{ big.join(items * 5000) }}", {"items": ["a"], "big": BIG}),
    ("{{ text.translate(text.maketrans({'a': big})) }}", {"text": "a" * 5000, "big": BIG}),
    ("{{ items * 5000 }}", {"items": [BIG]}),
    ("{{ (items * 5000)|string }}", {"items": [BIG]}),
    ("{{ (items * 5000)|tojson }}", {"items": [BIG]}),
    ("{{ items|tojson(indent=n) }}", {"items": [[1] * 100] * 100, "n": N}),
    ("{{ big * n }}", {"big": BIG, "n": 5000}),
    ("{{ text + text }}", {"text": "x" * 3_000_000}),
    ("{{ text ~ text }}", {"text": "x" * 3_000_000}),
    ("{{ n.to_bytes(n, 'big') }}", {"n": N}),
    ("{{ lipsum(n) }}", {"n": N}),
    ("{{ [1]|batch(n, 0)|list }}", {"n": N}),
    ("{{ [1]|slice(n)|list }}", {"n": N}),
]


def peak_while(run: Any) -> int:
    """The most memory Python held above where it started while ``run`` ran."""
    tracemalloc.start()
    try:
        run()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(("source", "variables"), OVERSIZED)
def test_each_oversized_form_is_refused_before_the_text_is_built(
    source: str, variables: dict[str, Any]
) -> None:
    prompt = Prompt(
        name="big/one", version=1, type="text", prompt=source, template_language="dotprompt"
    )
    prepared = prepare_prompt(prompt)
    options = RenderOptions(max_rendered_chars=4 * 1024 * 1024)
    caught: list[InvalidPromptRequest] = []

    def render() -> None:
        try:
            prepared.render(variables, None, options)
        except InvalidPromptRequest as exc:
            caught.append(exc)

    peak = peak_while(render)
    assert caught, "rendered"
    assert caught[0].code == "invalid_prompt_request"
    assert caught[0].status_code == 400
    assert "Prompt 'big/one'" in caught[0].message
    # Nothing near the refused size was ever allocated (the text would be megabytes).
    assert peak < 1_000_000


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ('{{ "a"|center(5) }}', {}, "  a  "),
        ("{{ 'a'.ljust(n) }}|", {"n": 3}, "a  |"),
        ('{{ "%*s|%-3s|%.2f"|format(3, "a", "b", 1.5) }}', {}, "  a|b  |1.50"),
        ('{{ "%(a)s-%(b)05d" % {"a": "x", "b": 7} }}', {}, "x-00007"),
        ('{{ "{:>{}}|{:.{}f}".format("a", 3, 1.5, 2) }}', {}, "  a|1.50"),
        ("{{ text|indent(2, true) }}", {"text": "a\nb"}, "  a\n  b"),
        ("{{ text|wordwrap(3) }}", {"text": "aa bb cc"}, "aa\nbb\ncc"),
        ("{{ text|replace('a', 'bb') }}", {"text": "aXa"}, "bbXbb"),
        ("{{ items|join(', ') }}", {"items": ["a", 1]}, "a, 1"),
        ("{{ items|tojson }}", {"items": [1, "a"]}, '[1, "a"]'),
        ("{{ text|truncate(n) }}", {"text": "a" * 10, "n": N}, "a" * 10),
        ("{{ items }}", {"items": [1, "a"]}, "[1, 'a']"),
        ("{{ 'a' + 'b' }}{{ 7 % 4 }}{{ 2 + 3 }}", {}, "ab35"),
    ],
)
def test_what_fits_renders_as_jinja_renders_it(
    source: str, variables: dict[str, Any], expected: str
) -> None:
    template = compile_jinja(source, split_roles=False)
    assert template.render(variables).messages[0][1] == expected


def test_the_bound_is_the_render_limit_and_the_400_names_the_line() -> None:
    template = compile_jinja("{% if true -%}\n{{ 'a'|center(n) }}{% endif %}", split_roles=False)
    assert len(template.render({"n": 1000}, limit=1000).messages[0][1]) == 1000
    with pytest.raises(RenderFailed) as caught:
        template.render({"n": 1001}, limit=1000)
    assert caught.value.line == 2
    assert "center would make more than 1000 characters" in caught.value.reason
    assert not caught.value.unsafe


def test_a_text_doubled_by_a_recursive_macro_stops_at_the_bound() -> None:
    # Each call doubles its argument: 1000 * 2**14 characters at the end, were it allowed. Each
    # level keeps its own argument, so the render holds about twice the bound at its deepest.
    source = (
        "{% macro twice(x, k) %}{% if k %}{{ twice(x ~ x, k - 1) }}{% endif %}{% endmacro %}"
        "{{ twice(big, 14) }}"
    )
    template = compile_jinja(source, split_roles=False)
    failures: list[RenderFailed] = []

    def render() -> None:
        try:
            template.render({"big": BIG}, limit=1_000_000)
        except RenderFailed as exc:
            failures.append(exc)

    peak = peak_while(render)
    assert failures
    assert "'~' would make more than 1000000 characters" in failures[0].reason
    assert peak < 3_000_000
