"""The renderer against the Langfuse SDK's own ``compile``, and the rules of the README's
"How a request is rewritten".

The SDK is the reference: property tests generate brace-heavy templates, awkward variable
names and every kind of value, and compare our output with ``TemplateParser`` and with
``TextPromptClient`` / ``ChatPromptClient.compile``. Where we diverge on purpose (render.py's
module docstring), the divergence is asserted explicitly, next to what the SDK does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langfuse.api import ChatMessage as LangfuseChatMessage
from langfuse.api import (
    PlaceholderMessage,
    PlaceholderMessageType,
    Prompt_Chat,
    Prompt_Text,
)
from langfuse.model import ChatPromptClient, TemplateParser, TextPromptClient

from prompt_middleware.errors import InvalidPromptRequest
from prompt_middleware.prepare import render_prompt
from prompt_middleware.prompts import ChatMessage, Placeholder, Prompt, PromptMessage
from prompt_middleware.render import RenderedPrompt, RenderOptions, compile_template, find_variables

# ---------------------------------------------------------------------------------------------
# Helpers: our prompt, the same prompt as the SDK sees it, and the two renderings.


def text_prompt(template: str) -> Prompt:
    return Prompt(name="greeting", version=1, type="text", prompt=template)


def chat_prompt(*items: PromptMessage) -> Prompt:
    return Prompt(name="assistant", version=3, type="chat", prompt=tuple(items))


def sdk_render(prompt: Prompt, variables: Mapping[str, Any]) -> list[Any]:
    """What the Langfuse SDK compiles ``prompt`` to, in our output shape."""
    version = int(prompt.version)
    if isinstance(prompt.prompt, str):
        text = Prompt_Text(
            prompt=prompt.prompt, name=prompt.name, version=version, config={}, labels=[], tags=[]
        )
        return [{"role": "user", "content": TextPromptClient(text).compile(**variables)}]
    items: list[LangfuseChatMessage | PlaceholderMessage] = [
        PlaceholderMessage(name=item.name, type=PlaceholderMessageType("placeholder"))
        if isinstance(item, Placeholder)
        else LangfuseChatMessage(role=item.role, content=item.content)
        for item in prompt.prompt
    ]
    chat = Prompt_Chat(
        prompt=items, name=prompt.name, version=version, config={}, labels=[], tags=[]
    )
    return list(ChatPromptClient(chat).compile(**variables))


def render(
    prompt: Prompt,
    variables: Mapping[str, Any],
    client_messages: ClientMessages | None = None,
    options: RenderOptions | None = None,
) -> RenderedPrompt:
    return render_prompt(prompt, variables, client_messages, options or RenderOptions())


def expected_missing(templates: Sequence[str], variables: Mapping[str, Any]) -> tuple[str, ...]:
    """The SDK's variable names of ``templates`` not in ``variables``, once each, in order."""
    names = (n for t in templates for n in TemplateParser.find_variable_names(t))
    return tuple(dict.fromkeys(n for n in names if n not in variables))


class ClientMessages:
    """A ``client_messages`` callable that counts its calls, or fails when it must not be used."""

    def __init__(self, messages: list[Any] | None = None, *, forbidden: bool = False) -> None:
        self.messages = messages if messages is not None else []
        self.forbidden = forbidden
        self.calls = 0

    def __call__(self) -> Sequence[Any]:
        if self.forbidden:
            raise AssertionError("client messages were decoded although they are not used")
        self.calls += 1
        return self.messages


# ---------------------------------------------------------------------------------------------
# Strategies. "self" is left out of the names: ``compile(self, **kwargs)`` cannot take it.

NAMES = ["a", "b", "name", "x y", "", "{a", "a}", "{{a", "var_1", "é", "class", "a  b"]
FRAGMENTS = [
    "{", "}", "{{", "}}", "{{{", "}}}", " ", "\n", "\t", "a", "b", "x", "y", "é",
    "{{a}}", "{{ a }}", "{{{a}}}", "{{{{a}}}}", "{{}}", "{{ }}", "{{a", "a}}", "{{ b}}",
    "{{x y}}", "{{\na\n}}", "{{name}}", "}}{{", "{{a}}{{a}}", "{ {a} }",
]  # fmt: skip

templates = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(alphabet="{} ab\n", max_size=6),
        st.sampled_from(NAMES).map(lambda name: "{{" + name + "}}"),
        st.sampled_from(NAMES).map(lambda name: "{{ " + name + "\n}}"),
    ),
    max_size=12,
).map("".join)

scalars = st.one_of(
    st.text(alphabet="{} ab\n", max_size=8),
    st.sampled_from(["{{b}}", "{{ a }}", "{{a}}", "}}", "{{", ""]),
    st.integers(min_value=-(10**21), max_value=10**21),
    st.just(10**20),
    st.floats(),
    st.booleans(),
    st.none(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(alphabet="{}ab", max_size=3), scalars, max_size=3),
)
variable_maps = st.dictionaries(
    st.one_of(st.sampled_from(NAMES), st.text(alphabet="{} ab", max_size=4)), values, max_size=6
)

roles = st.sampled_from(["system", "user", "assistant", "tool", "developer"])
TOOL_CALLS = [
    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"q": "{{a}}"}'}}
]
placeholder_messages = st.fixed_dictionaries(
    {"role": roles},
    optional={
        "content": templates,
        "name": st.sampled_from(["alice", "{{a}}"]),
        "tool_calls": st.just(TOOL_CALLS),
        "tool_call_id": st.just("call_1"),
    },
)
PLACEHOLDER_NAMES = ["history", "messages", "examples", "a"]
chat_items = st.lists(
    st.one_of(
        st.builds(ChatMessage, role=roles, content=templates),
        st.builds(Placeholder, name=st.sampled_from(PLACEHOLDER_NAMES)),
    ),
    max_size=6,
)


# ---------------------------------------------------------------------------------------------
# 1. Property tests against the SDK.


@settings(max_examples=500, deadline=None)
@given(template=templates, variables=variable_maps)
def test_compile_template_and_find_variables_match_the_sdk(
    template: str, variables: dict[str, Any]
) -> None:
    assert compile_template(template, variables) == TemplateParser.compile_template(
        template, variables
    )
    assert find_variables(template) == TemplateParser.find_variable_names(template)


@settings(max_examples=500, deadline=None)
@given(template=templates, variables=variable_maps)
def test_text_prompt_matches_the_sdk(template: str, variables: dict[str, Any]) -> None:
    before = copy.deepcopy(variables)
    rendered = render(text_prompt(template), variables)
    assert rendered.messages == sdk_render(text_prompt(template), variables)
    assert rendered.missing_variables == expected_missing([template], variables)
    assert variables == before


@settings(max_examples=500, deadline=None)
@given(items=chat_items, variables=variable_maps, data=st.data())
def test_chat_prompt_matches_the_sdk(
    items: list[PromptMessage], variables: dict[str, Any], data: st.DataObject
) -> None:
    for item in items:
        if isinstance(item, Placeholder):
            variables[item.name] = data.draw(st.lists(placeholder_messages, max_size=3))
    prompt = chat_prompt(*items)
    before = copy.deepcopy(variables)

    rendered = render(prompt, variables)

    assert rendered.messages == sdk_render(prompt, variables)
    templates_in_order = [
        text
        for item in items
        for text in (
            [item.content]
            if isinstance(item, ChatMessage)
            else [message.get("content", "") for message in variables[item.name]]
        )
    ]
    assert rendered.missing_variables == expected_missing(templates_in_order, variables)
    assert variables == before
    assert prompt == chat_prompt(*items)


# ---------------------------------------------------------------------------------------------
# 2. Edge cases, each checked against the SDK as well.


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        pytest.param("Hi {{name}}!", {"name": "Ada"}, "Hi Ada!", id="plain"),
        pytest.param("Hi {{ name }}!", {"name": "Ada"}, "Hi Ada!", id="spaces-in-braces"),
        pytest.param("Hi {{\t name\n}}!", {"name": "Ada"}, "Hi Ada!", id="tab-newline-in-braces"),
        pytest.param("{{ a }}", {" a ": "x"}, "{{ a }}", id="name-is-stripped"),
        pytest.param("{{x y}}", {"x y": "z"}, "z", id="space-inside-name"),
        pytest.param("[{{a}}]", {"a": None}, "[]", id="none-is-empty"),
        pytest.param("[{{a}}]", {"a": ""}, "[]", id="empty-string"),
        pytest.param("{{a}}", {"a": True}, "True", id="bool"),
        pytest.param("{{a}}", {"a": False}, "False", id="false"),
        pytest.param("{{a}}", {"a": 0}, "0", id="zero"),
        pytest.param("{{a}}", {"a": 1.5}, "1.5", id="float"),
        pytest.param("{{a}}", {"a": 10**20}, "100000000000000000000", id="20-digit-int"),
        pytest.param("{{a}}", {"a": {"k": [1, "x"]}}, "{'k': [1, 'x']}", id="dict-is-str"),
        pytest.param("{{a}}", {"a": [1, "x", None]}, "[1, 'x', None]", id="list-is-str"),
        pytest.param("{{{a}}}", {"a": "x"}, "{{{a}}}", id="triple-braces-name-is-{a"),
        pytest.param("{{{a}}}", {"{a": "x"}, "x}", id="triple-braces-filled"),
        pytest.param("{{{{a}}}}", {"{{a": "x"}, "x}}", id="quadruple-braces"),
        pytest.param("{{}}", {}, "{{}}", id="empty-name-unfilled"),
        pytest.param("{{}}", {"": "e"}, "e", id="empty-name-filled"),
        pytest.param("{{a", {"a": "x"}, "{{a", id="unterminated"),
        pytest.param("a}} {{a}}", {"a": "x"}, "a}} x", id="closing-first"),
        pytest.param("{{a}} {{b", {"a": "x"}, "x {{b", id="unterminated-after-variable"),
        pytest.param("{ {a} }", {"a": "x"}, "{ {a} }", id="single-braces"),
        pytest.param("{{nope}} {{a}}", {"a": "x"}, "{{nope}} x", id="unknown-left-as-written"),
        pytest.param("{{a}}/{{b}}", {"a": "{{b}}", "b": "B"}, "{{b}}/B", id="no-re-expansion"),
        pytest.param("{{a}}{{a}} {{ a }}", {"a": "x"}, "xx x", id="same-variable-twice"),
        pytest.param("", {"a": "x"}, "", id="empty-template"),
        pytest.param("{{a}}", {"a": "<b>&'\"\\"}, "<b>&'\"\\", id="no-escaping"),
    ],
)
def test_compile_edge_cases(template: str, variables: dict[str, Any], expected: str) -> None:
    assert TemplateParser.compile_template(template, variables) == expected
    assert compile_template(template, variables) == expected
    assert render(text_prompt(template), variables).messages == sdk_render(
        text_prompt(template), variables
    )


def test_find_variables_edge_cases() -> None:
    template = "{{ a }} {{{b}}} {{}} {{x y}} {{a}} {{c"
    assert TemplateParser.find_variable_names(template) == ["a", "{b", "", "x y", "a"]
    assert find_variables(template) == ["a", "{b", "", "x y", "a"]


def test_placeholder_messages_keep_every_key_and_have_their_variables_filled() -> None:
    prompt = chat_prompt(
        ChatMessage(role="system", content="You help {{user}}."),
        Placeholder(name="history"),
        ChatMessage(role="user", content="{{question}}"),
    )
    history = [
        {"role": "user", "content": "Hi, I am {{user}}", "name": "ada"},
        {"role": "assistant", "content": "", "tool_calls": TOOL_CALLS},
        {"role": "tool", "content": "{{ result }}", "tool_call_id": "call_1"},
    ]
    variables = {"user": "Ada", "question": "Why?", "result": 42, "history": history}

    rendered = render(prompt, variables)

    assert rendered.messages == [
        {"role": "system", "content": "You help Ada."},
        {"role": "user", "content": "Hi, I am Ada", "name": "ada"},
        {"role": "assistant", "content": "", "tool_calls": TOOL_CALLS},
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
        {"role": "user", "content": "Why?"},
    ]
    assert rendered.messages == sdk_render(prompt, variables)
    assert rendered.missing_variables == ()


def test_placeholder_message_without_content_gets_empty_content_like_the_sdk() -> None:
    prompt = chat_prompt(Placeholder(name="history"))
    variables = {"history": [{"role": "assistant", "tool_calls": TOOL_CALLS}]}

    rendered = render(prompt, variables)

    assert rendered.messages == [{"role": "assistant", "tool_calls": TOOL_CALLS, "content": ""}]
    assert rendered.messages == sdk_render(prompt, variables)
    assert variables == {"history": [{"role": "assistant", "tool_calls": TOOL_CALLS}]}


def test_empty_placeholder_list_removes_the_placeholder() -> None:
    prompt = chat_prompt(
        ChatMessage(role="system", content="S"),
        Placeholder(name="history"),
        ChatMessage(role="user", content="U"),
    )
    rendered = render(prompt, {"history": []})
    assert rendered.messages == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
    ]
    assert rendered.messages == sdk_render(prompt, {"history": []})


def test_chat_variables_used_twice_and_unknown_ones() -> None:
    prompt = chat_prompt(
        ChatMessage(role="system", content="{{a}} {{ b }} {{a}}"),
        ChatMessage(role="user", content="{{b}} {{c}} {{a}}"),
    )
    variables = {"a": "A"}
    rendered = render(prompt, variables)
    assert rendered.messages == [
        {"role": "system", "content": "A {{ b }} A"},
        {"role": "user", "content": "{{b}} {{c}} A"},
    ]
    assert rendered.messages == sdk_render(prompt, variables)
    assert rendered.missing_variables == ("b", "c")


def test_variable_value_that_is_also_a_placeholder_is_stringified_in_templates() -> None:
    history = [{"role": "user", "content": "hi"}]
    prompt = chat_prompt(ChatMessage(role="system", content="{{history}}"), Placeholder("history"))
    rendered = render(prompt, {"history": history})
    assert rendered.messages == [
        {"role": "system", "content": str(history)},
        {"role": "user", "content": "hi"},
    ]
    assert rendered.messages == sdk_render(prompt, {"history": history})


# ---------------------------------------------------------------------------------------------
# 3. Deliberate divergences from the SDK (render.py's module docstring).


def assert_invalid_prompt_request(error: InvalidPromptRequest, param: str) -> None:
    assert error.status_code == 400
    assert error.code == "invalid_prompt_request"
    assert error.param == param


def test_unfilled_placeholder_is_a_400_naming_it_where_the_sdk_keeps_it() -> None:
    prompt = chat_prompt(
        ChatMessage(role="system", content="S"),
        Placeholder(name="history"),
        Placeholder(name="examples"),
        Placeholder(name="filled"),
    )
    variables: dict[str, list[Any]] = {"filled": []}
    assert sdk_render(prompt, variables) == [
        {"role": "system", "content": "S"},
        {"type": "placeholder", "name": "history"},
        {"type": "placeholder", "name": "examples"},
    ]
    with pytest.raises(InvalidPromptRequest) as raised:
        render(prompt, variables)
    assert_invalid_prompt_request(raised.value, "prompt_variables")
    assert "'history'" in raised.value.message
    assert "'examples'" in raised.value.message
    assert "'filled'" not in raised.value.message
    assert "assistant" in raised.value.message  # the prompt's name


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("hello", id="string"),
        pytest.param({"role": "user", "content": "hi"}, id="one-message-not-in-a-list"),
        pytest.param(None, id="null"),
        pytest.param(3, id="number"),
        pytest.param(True, id="bool"),
    ],
)
def test_placeholder_value_that_is_not_a_list_is_a_400(value: Any) -> None:
    prompt = chat_prompt(Placeholder(name="history"))
    assert sdk_render(prompt, {"history": value}) == [{"role": "NOT_GIVEN", "content": str(value)}]
    with pytest.raises(InvalidPromptRequest) as raised:
        render(prompt, {"history": value})
    assert_invalid_prompt_request(raised.value, "prompt_variables")
    assert "'history'" in raised.value.message


@pytest.mark.parametrize(
    ("element", "sdk_role"),
    [
        pytest.param("hi", "NOT_GIVEN", id="string"),
        pytest.param(["user", "hi"], "NOT_GIVEN", id="list"),
        pytest.param(None, "NOT_GIVEN", id="null"),
        pytest.param({"content": "hi"}, "NOT_GIVEN", id="no-role"),
        pytest.param({"role": None, "content": "hi"}, None, id="null-role"),
        pytest.param({"role": 1, "content": "hi"}, 1, id="number-role"),
    ],
)
def test_placeholder_element_that_is_not_a_message_with_a_string_role_is_a_400(
    element: Any, sdk_role: Any
) -> None:
    prompt = chat_prompt(Placeholder(name="history"))
    variables = {"history": [{"role": "user", "content": "ok"}, element]}
    assert sdk_render(prompt, variables)[1]["role"] == sdk_role
    with pytest.raises(InvalidPromptRequest) as raised:
        render(prompt, variables)
    assert_invalid_prompt_request(raised.value, "prompt_variables")
    assert "history[1]" in raised.value.message


def test_placeholder_message_with_null_content_is_kept_where_the_sdk_crashes() -> None:
    prompt = chat_prompt(Placeholder(name="history"), ChatMessage(role="user", content="{{a}}"))
    message = {"role": "assistant", "content": None, "tool_calls": TOOL_CALLS}
    variables = {"history": [message], "a": "A"}
    with pytest.raises(TypeError):  # the SDK takes len(None)
        sdk_render(prompt, variables)
    assert render(prompt, variables).messages == [message, {"role": "user", "content": "A"}]


def test_placeholder_message_with_content_parts_has_its_text_parts_filled() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x.test/{{a}}.png"}}
    parts = [{"type": "text", "text": "Look at {{ a }}, {{b}}"}, image, "{{a}}"]
    variables = {"history": [{"role": "user", "content": parts}], "a": "A"}
    before = copy.deepcopy(variables)
    with pytest.raises(AttributeError):  # the SDK calls str methods on the list
        sdk_render(chat_prompt(Placeholder(name="history")), variables)

    rendered = render(chat_prompt(Placeholder(name="history")), variables)

    assert rendered.messages == [
        {"role": "user", "content": [{"type": "text", "text": "Look at A, {{b}}"}, image, "{{a}}"]}
    ]
    assert rendered.missing_variables == ("b",)
    assert variables == before


# ---------------------------------------------------------------------------------------------
# 4. The renderer's own rules (README, "How a request is rewritten").

CLIENT = [{"role": "user", "content": "from the client {{a}}"}]


def test_text_prompt_is_one_user_message() -> None:
    rendered = render(text_prompt("Hello {{a}}"), {"a": "A"})
    assert rendered == RenderedPrompt(
        messages=[{"role": "user", "content": "Hello A"}], missing_variables=()
    )


def test_text_prompt_role_can_be_system() -> None:
    rendered = render(text_prompt("Hi"), {}, options=RenderOptions(text_prompt_role="system"))
    assert rendered.messages == [{"role": "system", "content": "Hi"}]


def test_client_messages_fill_the_messages_placeholder() -> None:
    prompt = chat_prompt(ChatMessage(role="system", content="S"), Placeholder(name="messages"))
    client = ClientMessages(CLIENT)
    rendered = render(prompt, {"a": "A"}, client)
    # The client's own conversation goes in as sent: never templated.
    assert rendered.messages == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "from the client {{a}}"},
    ]
    assert rendered.missing_variables == ()
    assert client.calls == 1


def test_client_messages_fill_a_custom_messages_placeholder() -> None:
    prompt = chat_prompt(Placeholder(name="conversation"), ChatMessage(role="user", content="U"))
    options = RenderOptions(messages_placeholder="conversation")
    rendered = render(prompt, {}, ClientMessages(CLIENT), options)
    assert rendered.messages == [CLIENT[0], {"role": "user", "content": "U"}]
    assert rendered.missing_variables == ()

    # With the default setting, "conversation" is an ordinary placeholder: unfilled is a 400.
    with pytest.raises(InvalidPromptRequest, match="conversation"):
        render(prompt, {}, ClientMessages(forbidden=True))


def test_unfilled_messages_placeholder_without_client_messages_is_a_400() -> None:
    with pytest.raises(InvalidPromptRequest, match="'messages'"):
        render(chat_prompt(Placeholder(name="messages")), {}, None)


def test_prompt_variables_win_over_client_messages_for_the_placeholder() -> None:
    prompt = chat_prompt(Placeholder(name="messages"))
    given_messages = [{"role": "user", "content": "from prompt_variables"}]
    rendered = render(prompt, {"messages": given_messages}, ClientMessages(forbidden=True))
    assert rendered.messages == given_messages


def test_client_messages_are_ignored_by_default_and_never_decoded() -> None:
    forbidden = ClientMessages(forbidden=True)
    assert render(text_prompt("T"), {}, forbidden).messages == [{"role": "user", "content": "T"}]
    prompt = chat_prompt(ChatMessage(role="system", content="S"), Placeholder(name="history"))
    rendered = render(prompt, {"history": []}, forbidden, RenderOptions(client_messages="ignore"))
    assert rendered.messages == [{"role": "system", "content": "S"}]


def test_append_puts_client_messages_after_a_text_prompt() -> None:
    # Appended as LiteLLM appends them: the client's own words, variables not filled.
    client = ClientMessages(CLIENT)
    rendered = render(text_prompt("T"), {"a": "A"}, client, RenderOptions(client_messages="append"))
    assert rendered.messages == [
        {"role": "user", "content": "T"},
        {"role": "user", "content": "from the client {{a}}"},
    ]
    assert client.calls == 1


def test_append_puts_client_messages_after_a_chat_prompt() -> None:
    prompt = chat_prompt(
        ChatMessage(role="system", content="S"),
        Placeholder(name="messages"),
        ChatMessage(role="user", content="U"),
    )
    client = ClientMessages(CLIENT)
    variables = {"messages": [{"role": "assistant", "content": "given"}]}
    rendered = render(prompt, variables, client, RenderOptions(client_messages="append"))
    assert rendered.messages == [
        {"role": "system", "content": "S"},
        {"role": "assistant", "content": "given"},
        {"role": "user", "content": "U"},
        {"role": "user", "content": "from the client {{a}}"},
    ]
    assert rendered.missing_variables == ()
    assert client.calls == 1


def test_append_does_not_duplicate_client_messages_that_filled_the_placeholder() -> None:
    prompt = chat_prompt(Placeholder(name="messages"), ChatMessage(role="user", content="U"))
    client = ClientMessages(CLIENT)
    rendered = render(prompt, {"a": "A"}, client, RenderOptions(client_messages="append"))
    assert rendered.messages == [
        {"role": "user", "content": "from the client {{a}}"},
        {"role": "user", "content": "U"},
    ]
    assert client.calls == 1


def test_strict_variables_is_a_400_listing_every_missing_variable_sorted() -> None:
    prompt = chat_prompt(
        ChatMessage(role="system", content="{{zeta}} {{alpha}} {{given}}"),
        Placeholder(name="history"),
        ChatMessage(role="user", content="{{ mid }} {{zeta}}"),
    )
    variables: dict[str, Any] = {"given": 1, "history": [{"role": "user", "content": "{{beta}}"}]}
    with pytest.raises(InvalidPromptRequest) as raised:
        render(prompt, variables, options=RenderOptions(strict_variables=True))
    assert_invalid_prompt_request(raised.value, "prompt_variables")
    assert str(["alpha", "beta", "mid", "zeta"]) in raised.value.message
    assert "'given'" not in raised.value.message

    rendered = render(prompt, variables)
    assert rendered.missing_variables == ("zeta", "alpha", "beta", "mid")
    assert rendered.messages[0] == {"role": "system", "content": "{{zeta}} {{alpha}} 1"}


def test_strict_variables_passes_when_every_variable_is_given() -> None:
    strict = RenderOptions(strict_variables=True)
    rendered = render(text_prompt("{{a}} {{ b }}"), {"a": None, "b": 0}, options=strict)
    assert rendered == RenderedPrompt(
        messages=[{"role": "user", "content": " 0"}], missing_variables=()
    )


def test_strict_variables_ignores_braces_in_client_messages() -> None:
    prompt = chat_prompt(Placeholder(name="messages"))
    options = RenderOptions(strict_variables=True)
    assert render(prompt, {}, ClientMessages(CLIENT), options).messages == CLIENT


def test_inputs_and_prompt_are_not_mutated_and_outputs_are_copies() -> None:
    prompt = chat_prompt(
        ChatMessage(role="system", content="{{a}}"),
        Placeholder(name="history"),
        Placeholder(name="messages"),
    )
    history = [{"role": "user", "content": "{{a}}", "name": "n", "tool_calls": TOOL_CALLS}]
    variables: dict[str, Any] = {"a": "A", "history": history}
    client_messages = [{"role": "user", "content": "{{a}}"}, {"role": "assistant"}]
    variables_before = copy.deepcopy(variables)
    client_before = copy.deepcopy(client_messages)

    rendered = render(
        prompt, variables, ClientMessages(client_messages), RenderOptions(client_messages="append")
    )

    assert variables == variables_before
    assert client_messages == client_before
    assert prompt == chat_prompt(
        ChatMessage(role="system", content="{{a}}"),
        Placeholder(name="history"),
        Placeholder(name="messages"),
    )
    assert len(rendered.messages) == 4
    # prompt_variables' messages are copies; the client's are passed on as they came.
    assert all(out is not given for out in rendered.messages for given in history)
    rendered.messages[1]["content"] = "changed"
    assert history[0]["content"] == "{{a}}"
