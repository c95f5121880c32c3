"""What a template may not do: reach Python's internals or other files, change its values.

Refused when the template is compiled (the file cannot be served, naming the line), or stopped
by the sandbox when it renders (the prompt's fault: a 502, logged). A failure that depends on
the variables sent is the client's: a 400 naming the line.
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from prompt_middleware.errors import InvalidPromptRequest, PromptStoreUnavailable
from prompt_middleware.jinja import TemplateInvalid, compile_jinja


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "__"),
        ("Hi\n{{ cycler.__init__.__globals__ }}", "__"),
        ("{{ x['__class__'] }}", "__class__"),
        ("{{ x | attr('__class__') }}", "__class__"),
        ("{{ f.gi_frame }}", "gi_frame"),
    ],
)
def test_private_attributes_are_refused_when_the_template_is_compiled(
    source: str, forbidden: str
) -> None:
    with pytest.raises(TemplateInvalid, match=f"line {source.count(chr(10)) + 1}: .*{forbidden}"):
        compile_jinja(source, origin="evil.prompt", split_roles=True)


def test_what_the_sandbox_stops_at_render_is_the_prompts_fault_not_the_clients() -> None:
    template = compile_jinja("User:\n{{ x[name] }}", origin="evil.prompt", split_roles=True)
    with capture_logs() as logs, pytest.raises(PromptStoreUnavailable) as caught:
        template.render({"x": "text", "name": "__class__"})
    assert caught.value.status_code == 502
    assert "evil.prompt cannot be rendered: line 2: the sandbox stopped it" in caught.value.message
    assert logs[0]["event"] == "prompt_template_unsafe"
    assert logs[0]["line"] == 2


def test_a_format_string_cannot_reach_attributes_either() -> None:
    template = compile_jinja("{{ '{0.__class__}'.format(x) }}", origin="a.prompt", split_roles=True)
    with pytest.raises(PromptStoreUnavailable, match="the sandbox stopped it"):
        template.render({"x": "text"})


def test_values_cannot_be_changed_by_the_template() -> None:
    template = compile_jinja("{{ items.append(1) }}", origin="a.prompt", split_roles=True)
    items: list[int] = []
    with pytest.raises(PromptStoreUnavailable):
        template.render({"items": items})
    assert items == []


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{% include 'other.prompt' %}", "include"),
        ("{% extends 'base.prompt' %}", "extends"),
        ("{% import 'macros.prompt' as m %}", "import"),
        ("{% from 'macros.prompt' import m %}", "import"),
    ],
)
def test_what_reaches_other_files_is_refused(source: str, reason: str) -> None:
    with pytest.raises(TemplateInvalid, match=reason):
        compile_jinja(source, origin="a.prompt", split_roles=True)


def test_what_jinja_itself_cannot_compile_is_refused_not_raised() -> None:
    # Jinja's compiler fails on a variable in a filtered {% set %} block's arguments.
    with pytest.raises(TemplateInvalid, match="Jinja cannot compile it"):
        compile_jinja(
            "{% set x | replace('a', v) %}abc{% endset %}{{ x }}",
            origin="a.prompt",
            split_roles=True,
        )


def test_a_syntax_error_names_the_line_of_the_file() -> None:
    # The body starts on line 5 of the file, after four lines of front matter.
    with pytest.raises(TemplateInvalid, match=r"^line 6: .*'endif'"):
        compile_jinja("Hello\n{% if x %}", origin="a.prompt", split_roles=True, first_line=5)


def test_a_runtime_error_is_a_400_naming_the_line() -> None:
    template = compile_jinja("Age\n{{ age + 1 }}", origin="a.prompt", split_roles=True)
    with pytest.raises(InvalidPromptRequest) as caught:
        template.render({"age": "thirty"})
    assert caught.value.status_code == 400
    assert caught.value.message.startswith(
        "a.prompt cannot be rendered with these prompt_variables: line 2: "
    )


def test_an_undefined_variable_in_arithmetic_is_a_400_naming_it() -> None:
    template = compile_jinja("{{ count + 1 }}", origin="a.prompt", split_roles=True)
    with pytest.raises(InvalidPromptRequest, match="'count' is undefined"):
        template.render({})


def test_endless_recursion_is_a_400_not_a_crash() -> None:
    source = "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"
    template = compile_jinja(source, origin="a.prompt", split_roles=True)
    with pytest.raises(InvalidPromptRequest, match="line 1"):
        template.render({})
