"""What a template may not do: reach Python's internals or other files, change its values.

Refused when the template is compiled (the file cannot be served, naming the line), or stopped
by the sandbox when it renders (the prompt's fault: a 502, logged). A failure that depends on
the variables sent is the client's: a 400 naming the line.
"""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from prompt_middleware.errors import InvalidPromptRequest, PromptStoreUnavailable
from prompt_middleware.jinja import TemplateInvalid, compile_jinja
from prompt_middleware.prepare import prepare_prompt
from prompt_middleware.prompts import Prompt
from prompt_middleware.render import RenderedPrompt, RenderOptions


def dotprompt(source: str) -> Prompt:
    return Prompt(name="p", version=3, type="text", prompt=source, template_language="dotprompt")


def render(source: str, variables: dict[str, Any]) -> RenderedPrompt:
    return prepare_prompt(dotprompt(source)).render(variables, None, RenderOptions())


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
        compile_jinja(source, split_roles=True)


def test_a_prompt_whose_template_is_refused_is_unavailable() -> None:
    # Stores refuse such a template when they read it; the engine refuses it too.
    with pytest.raises(PromptStoreUnavailable) as caught:
        prepare_prompt(dotprompt("Hi {{ x.__class__ }}"))
    assert caught.value.message == (
        "Prompt 'p' cannot be served: line 1: the sandbox forbids access to attribute '__class__'"
    )


def test_what_the_sandbox_stops_at_render_is_the_prompts_fault_not_the_clients() -> None:
    with capture_logs() as logs, pytest.raises(PromptStoreUnavailable) as caught:
        render("User:\n{{ x[name] }}", {"x": "text", "name": "__class__"})
    assert caught.value.status_code == 502
    assert caught.value.message.startswith(
        "Prompt 'p' cannot be rendered: line 2 of its template: the sandbox stopped it"
    )
    [log] = logs
    assert (log["event"], log["prompt"], log["version"], log["line"]) == (
        "prompt_template_unsafe",
        "p",
        3,
        2,
    )


def test_a_format_string_cannot_reach_attributes_either() -> None:
    with pytest.raises(PromptStoreUnavailable, match="the sandbox stopped it"):
        render("{{ '{0.__class__}'.format(x) }}", {"x": "text"})


def test_values_cannot_be_changed_by_the_template() -> None:
    items: list[int] = []
    with pytest.raises(PromptStoreUnavailable):
        render("{{ items.append(1) }}", {"items": items})
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
        compile_jinja(source, split_roles=True)


def test_what_jinja_itself_cannot_compile_is_refused_not_raised() -> None:
    # Jinja's compiler fails on a variable in a filtered {% set %} block's arguments.
    with pytest.raises(TemplateInvalid, match="Jinja cannot compile it"):
        compile_jinja("{% set x | replace('a', v) %}abc{% endset %}{{ x }}", split_roles=True)


def test_a_syntax_error_names_the_line_of_the_file() -> None:
    with pytest.raises(TemplateInvalid) as caught:
        compile_jinja("Hello\n{% if x %}", split_roles=True)
    assert str(caught.value).startswith("line 2: Unexpected end of template")
    # The body starts on line 5 of its file, after four lines of front matter.
    assert caught.value.describe(first_line=5).startswith("line 6: Unexpected end")


def test_a_runtime_error_is_a_400_naming_the_line() -> None:
    with pytest.raises(InvalidPromptRequest) as caught:
        render("Age\n{{ age + 1 }}", {"age": "thirty"})
    assert caught.value.status_code == 400
    assert caught.value.param == "prompt_variables"
    assert caught.value.message.startswith(
        "Prompt 'p' cannot be rendered: line 2 of its template, with these prompt_variables: "
    )


def test_an_undefined_variable_in_arithmetic_is_a_400_naming_it() -> None:
    with pytest.raises(InvalidPromptRequest, match="'count' is undefined"):
        render("{{ count + 1 }}", {})


def test_endless_recursion_is_a_400_not_a_crash() -> None:
    with pytest.raises(InvalidPromptRequest, match="line 1"):
        render("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", {})
