"""What a Jinja ``.prompt`` body renders to: LiteLLM's dotprompt examples, as messages."""

from __future__ import annotations

from typing import Any

import pytest

from prompt_middleware.jinja import JinjaMessages, JinjaTemplate, compile_jinja, is_plain
from prompt_middleware.prepare import prepare_prompt
from prompt_middleware.prompts import ChatMessage, Prompt
from prompt_middleware.render import PreparedPrompt, RenderOptions

CODING_ASSISTANT = """
You are a helpful coding assistant. {% if language %}Focus on {{language}} programming.{% endif %}

Task: {{task}}

{% if code %}
Current code:
```{{language}}
{{code}}
```
{% endif %}

{% if requirements %}
Requirements:
{% for req in requirements %}
- {{req}}
{% endfor %}
{% endif %}

Please provide a clear and well-documented solution."""

CHAT = "{% if system_context %}System: {{system_context}}\n\n{% endif %}User: {{user_message}}"


def render(source: str, variables: dict[str, Any]) -> list[tuple[str | None, str]]:
    template = compile_jinja(source, split_roles=True)
    return list(template.render(variables).messages)


def test_a_conditional_system_message_is_there_only_when_its_variable_is() -> None:
    with_context = {"system_context": "You are a helpful assistant.", "user_message": "Hi!"}
    assert render(CHAT, with_context) == [
        ("system", "You are a helpful assistant."),
        ("user", "Hi!"),
    ]
    assert render(CHAT, {"user_message": "Hi!"}) == [("user", "Hi!")]


def test_a_loop_over_a_list_and_a_code_block_keep_their_lines_and_indentation() -> None:
    variables = {
        "language": "Python",
        "task": "Create a function to calculate fibonacci numbers",
        "code": "def fib(n):\n    pass",
        "requirements": ["Use recursion", "Handle edge cases"],
    }
    [(role, content)] = render(CODING_ASSISTANT, variables)
    assert role is None  # no role markers: a text prompt
    assert "Focus on Python programming." in content
    assert "```Python\ndef fib(n):\n    pass\n```" in content  # LiteLLM strips the 4 spaces
    assert "Requirements:\n\n- Use recursion\n\n- Handle edge cases\n" in content
    assert content.endswith("Please provide a clear and well-documented solution.")


def test_false_conditions_and_empty_loops_leave_nothing() -> None:
    [(_, content)] = render(CODING_ASSISTANT, {"task": "Sort a list"})
    assert "Current code" not in content
    assert "Requirements" not in content
    assert "Focus on" not in content


def test_filters_comments_and_expressions() -> None:
    source = "{# a note for prompt engineers #}Hello {{ name | upper }}, {{ items | join(', ') }}"
    source += " {{ age >= 18 and 'adult' or 'minor' }} {{ '%.1f' | format(score) }}"
    variables = {"name": "ada", "items": ["a", "b"], "age": 30, "score": 2.25}
    assert render(source, variables) == [(None, "Hello ADA, a, b adult 2.2")]


def test_no_html_escaping() -> None:
    # LiteLLM's environment autoescapes: its model reads "Tom &amp; Jerry".
    assert render("Watch {{ show }} <b>now</b>", {"show": "Tom & Jerry <3"}) == [
        (None, "Watch Tom & Jerry <3 <b>now</b>")
    ]


def test_role_markers_in_any_case_and_text_before_the_first_is_a_user_message() -> None:
    source = "Read this first.\nSYSTEM: Be brief.\n  assistant: Sure.\nUser: {{ q }}\nSystem:\n"
    assert render(source, {"q": "Why?"}) == [
        ("user", "Read this first."),
        ("system", "Be brief."),
        ("assistant", "Sure."),
        ("user", "Why?"),
    ]


def test_a_marker_whose_section_renders_empty_adds_no_message() -> None:
    assert render("System: {{ a }}\nUser: {{ b }}", {"a": "", "b": "hi"}) == [("user", "hi")]


def test_markers_written_by_a_loop_make_one_message_each() -> None:
    source = "{% for turn in turns %}\nUser: {{ turn }}{% endfor %}"
    assert render(source, {"turns": ["one", "two"]}) == [("user", "one"), ("user", "two")]


def test_undefined_variables_are_empty_and_reported() -> None:
    template = compile_jinja(
        "Hi {{ name }}{{ title | upper }} {{ user.name }}{% if flag %}!{% endif %}",
        split_roles=True,
    )
    rendered = template.render({})
    assert rendered.messages == ((None, "Hi"),)
    # written out: reported; only tested by an {% if %}: optional, not reported
    assert rendered.missing == ("name", "title", "user")


def test_values_are_written_as_jinja_writes_them() -> None:
    variables = {"n": 3, "f": 0.5, "b": True, "none": None, "items": [1, "a"], "d": {"k": 1}}
    source = "{{n}} {{f}} {{b}} {{none}} {{items}} {{d}}"
    # None is written as nothing, as our {{variable}} substitution does (Jinja writes "None")
    assert render(source, variables) == [(None, "3 0.5 True  [1, 'a'] {'k': 1}")]


def test_one_message_content_keeps_its_whitespace_when_roles_are_not_split() -> None:
    # Humanloop's jinja messages: each is one template, sent as rendered.
    template = compile_jinja("  System: {{ x }}\n", split_roles=False)
    assert template.render({"x": "a"}).messages == ((None, "  System: a\n"),)


@pytest.mark.parametrize(
    ("source", "plain"),
    [
        ("Hello {{name}}, {{ other }}!\nSystem: x", True),
        ("no variables at all", True),
        ("{% if x %}y{% endif %}", False),
        ("{# note #}", False),
        ("{{ name | upper }}", False),
        ("{{ user.name }}", False),
        ("{{ none }}", False),  # a Jinja literal, not a variable
        ("{{ range }}", False),  # a Jinja global
        ("{{ unclosed", False),
    ],
)
def test_is_plain_only_without_logic(source: str, plain: bool) -> None:
    assert is_plain(source) is plain


def test_a_chat_prompt_of_jinja_messages_renders_each_as_written() -> None:
    # Humanloop's jinja chat templates: one template per message, roles given by Humanloop.
    def message(source: str) -> JinjaTemplate:
        return compile_jinja(source, split_roles=False)

    template = JinjaMessages(
        (
            ("system", message("You help with {{ product | upper }}.{% if x %} X{% endif %}")),
            ("user", message("{{ question }}\n")),
        )
    )
    rendered = template.render({"product": "acme", "question": "User: why?"})
    assert rendered.messages == (("system", "You help with ACME."), ("user", "User: why?\n"))
    assert rendered.missing == ()


def test_captured_text_holds_its_values_for_filters_and_comparisons() -> None:
    # {% set %} blocks, macros, caller() and {% filter %} blocks work on the values' text.
    variables = {"answer": "yes", "name": "ada", "suffix": "!"}
    source = (
        "{% set said %}{{ answer }}{% endset %}"
        "{% macro greet(who) %}hello {{ who }}{% endmacro %}"
        "{% macro shout() %}{{ caller() | upper }}{% endmacro %}"
        "{% if said == 'yes' %}{{ greet(name) | title }}{% endif %} "
        "{% call shout() %}{{ name }}{% endcall %} "
        "{% filter replace('!', suffix * 2) %}{{ name }}!{% endfilter %} "
        "{% set loud | upper %}{{ name }}{% endset %}{{ loud }} {{ said | length }}"
    )
    assert render(source, variables) == [(None, "Hello Ada ADA ada!! ADA 3")]


def test_a_template_is_compiled_once_whoever_asks() -> None:
    # The store checks it when it reads the file, the engine renders it: one compile.
    source = "{% if x %}once{% endif %}"
    assert compile_jinja(source, split_roles=True) is compile_jinja(source, split_roles=True)


def test_a_langfuse_prompt_is_not_jinja() -> None:
    # Langfuse's own {{var}} semantics, unchanged: logic sent as written, unknown kept.
    text = "{% if vip %}Dear{% endif %} {{ name | upper }} {{name}} {{ missing }}"
    prompt = Prompt(name="p", version=1, type="text", prompt=text)
    prepared = prepare_prompt(prompt)
    assert isinstance(prepared, PreparedPrompt)
    rendered = prepared.render({"name": "ada"}, None, RenderOptions())
    assert rendered.messages == [
        {
            "role": "user",
            "content": "{% if vip %}Dear{% endif %} {{ name | upper }} ada {{ missing }}",
        }
    ]


@pytest.mark.parametrize(
    ("prompt", "plain"),
    [
        (("Hi {{ name }}", "Bye"), True),
        (("Hi {{ name | title }}", "Bye"), False),
    ],
)
def test_a_jinja_prompt_takes_the_plain_renderer_unless_it_has_logic(
    prompt: tuple[str, str], plain: bool
) -> None:
    messages = (ChatMessage("system", prompt[0]), ChatMessage("user", prompt[1]))
    jinja = Prompt(name="p", version=1, type="chat", prompt=messages, template_language="jinja")
    prepared = prepare_prompt(jinja)
    assert isinstance(prepared, PreparedPrompt) is plain
    rendered = prepared.render({"name": "ada lovelace"}, None, RenderOptions())
    assert rendered.messages[1] == {"role": "user", "content": "Bye"}
    assert rendered.messages[0]["content"] in ("Hi ada lovelace", "Hi Ada Lovelace")
    # Jinja writes an unknown variable as nothing, on either path.
    assert prepared.render({}, None, RenderOptions()).messages[0]["content"] == "Hi "
