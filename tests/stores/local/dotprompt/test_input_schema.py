"""``input.schema`` is checked before rendering: a wrong type or a missing required variable
is a 400 naming it. The forms LiteLLM's dotprompt reads (``name: type`` with its type names),
and Dotprompt's Picoschema and JSON Schema objects, which its README points to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from prompt_middleware.errors import InvalidPromptRequest
from prompt_middleware.input_schema import InputSchema, SchemaInvalid
from tests.conftest import RecordingApp
from tests.stores.local.dotprompt.support import send


def schema(text: str) -> InputSchema:
    return InputSchema.parse(yaml.safe_load(text))


def problem(checked: InputSchema, variables: dict[str, Any]) -> str:
    with pytest.raises(InvalidPromptRequest) as caught:
        checked.check(variables, "greeting")
    assert caught.value.status_code == 400
    assert caught.value.code == "invalid_prompt_request"
    assert caught.value.param == "prompt_variables"
    return caught.value.message


LITELLM = schema("{name: string, age: integer, active: boolean}")


def test_litellms_example_accepts_the_right_types() -> None:
    LITELLM.check({"name": "Alice", "age": 30, "active": True}, "greeting")


def test_a_wrong_type_names_the_variable_and_the_expected_type() -> None:
    message = problem(LITELLM, {"name": "Alice", "age": "thirty", "active": True})
    assert message == (
        "Prompt 'greeting' does not accept these prompt_variables (its input.schema): "
        "prompt_variables.age must be integer, got string."
    )


def test_a_required_variable_missing_is_named() -> None:
    message = problem(LITELLM, {"name": "Alice", "active": True})
    assert "prompt_variables.age is required (integer)" in message


def test_every_problem_is_listed() -> None:
    message = problem(LITELLM, {"age": 1.5, "active": "yes"})
    assert "prompt_variables.name is required (string)" in message
    assert "prompt_variables.age must be integer, got number" in message
    assert "prompt_variables.active must be boolean, got string" in message


@pytest.mark.parametrize(
    ("type_name", "good", "bad"),
    [
        ("string", "x", 1),
        ("str", "x", None),
        ("integer", 3, True),  # JSON: a boolean is not a number (Python's isinstance says it is)
        ("int", -1, 1.5),
        ("number", 1.5, "1.5"),
        ("float", 3, False),  # JSON does not tell 3 from 3.0
        ("boolean", False, 0),
        ("bool", True, "true"),
        ("array", [1], {"a": 1}),
        ("list", [], "[]"),
        ("object", {}, []),
        ("dict", {"a": 1}, "a"),
        ("date", "2026-12-04", 20261204),  # unknown names mean string, as in LiteLLM
        ("any", None, ...),
    ],
)
def test_litellms_type_names(type_name: str, good: Any, bad: Any) -> None:
    checked = schema(f"value: {type_name}")
    checked.check({"value": good}, "greeting")
    if bad is not ...:
        assert "prompt_variables.value must be" in problem(checked, {"value": bad})


def test_optional_fields_may_be_absent_or_null() -> None:
    checked = schema("{name: string, 'language?': string, 'requirements?': array}")
    checked.check({"name": "a"}, "greeting")
    checked.check({"name": "a", "language": None}, "greeting")
    assert "requirements must be array, got string" in problem(
        checked, {"name": "a", "requirements": "one"}
    )


def test_a_required_field_given_null_is_a_wrong_type() -> None:
    assert "prompt_variables.name must be string, got null" in problem(
        schema("name: string"), {"name": None}
    )


def test_picoschema_descriptions_arrays_objects_and_enums() -> None:
    checked = schema(
        """
        title?: string, the title of the article if it has one
        tags?(array, a list of string tags): string
        address(object):
          city: string
          zip?: integer
        tone(enum): [formal, casual]
        """
    )
    good = {"tags": ["a"], "address": {"city": "Paris"}, "tone": "formal"}
    checked.check(good, "greeting")
    message = problem(
        checked, {"title": 3, "tags": ["a", 2], "address": {"zip": "x"}, "tone": "rude"}
    )
    assert "prompt_variables.title must be string, got integer" in message
    assert "prompt_variables.tags[1] must be string, got integer" in message
    assert "prompt_variables.address.city is required (string)" in message
    assert "prompt_variables.address.zip must be integer, got string" in message
    assert "prompt_variables.tone must be one of 'formal', 'casual', got string" in message


def test_json_schema_objects() -> None:
    checked = schema(
        """
        type: object
        properties:
          name: {type: string}
          age: {type: [integer, "null"]}
          tags: {type: array, items: {type: string}}
        required: [name]
        """
    )
    checked.check({"name": "a", "tags": ["x"]}, "greeting")
    message = problem(checked, {"age": "old", "tags": [1]})
    assert "prompt_variables.name is required (string)" in message
    assert "prompt_variables.age must be integer, got string" in message
    assert "prompt_variables.tags[0] must be string, got integer" in message


def test_variables_the_schema_does_not_name_are_allowed() -> None:
    schema("name: string").check({"name": "a", "other": [1]}, "greeting")


def test_many_problems_are_cut_short() -> None:
    checked = schema("{" + ", ".join(f"v{i}: string" for i in range(8)) + "}")
    assert problem(checked, {}).endswith("; and 3 more.")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("MySchema", "named schema is not supported"),
        ("[name, age]", "must be a mapping"),
        ("{'x(tuple)': string}", "unknown kind 'tuple'"),
        ("{'x(enum)': formal}", "an enum needs a list"),
        ("{x: 3}", "a type must be a name"),
        ("{type: object, properties: {a: {type: string}}, required: a}", "must be a list"),
    ],
)
def test_a_schema_that_cannot_be_read_says_where(text: str, reason: str) -> None:
    with pytest.raises(SchemaInvalid, match=reason):
        schema(text)


async def test_a_value_of_the_wrong_type_is_a_400_naming_it(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    # LiteLLM's own example: age: integer given "thirty" (LiteLLM raises; we answer a 400)
    response = await send(client, "recommendations", prompt_variables={"name": "A", "age": "30"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_prompt_request"
    assert error["param"] == "prompt_variables"
    assert "prompt_variables.age must be integer, got string" in error["message"]
    assert app.requests == []


async def test_a_required_variable_missing_is_a_400_naming_it(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    response = await send(client, "chat_prompt", prompt_variables={"system_context": "x"})
    assert response.status_code == 400
    assert "prompt_variables.user_message is required (string)" in response.text
    assert app.requests == []


async def test_a_plain_body_is_checked_too(client: httpx2.AsyncClient, app: RecordingApp) -> None:
    # conversation.prompt has no Jinja logic: the plain substitution renders it, after the check.
    variables = {"personality": ["pirate"], "context": "x"}
    response = await send(client, "conversation", prompt_variables=variables)
    assert response.status_code == 400
    assert "prompt_variables.personality must be string, got array" in response.text


async def test_a_schema_that_cannot_be_read_makes_the_file_unavailable(
    client: httpx2.AsyncClient, litellm_folder: Path
) -> None:
    (litellm_folder / "odd.prompt").write_text("---\ninput:\n  schema: MySchema\n---\nHi")
    response = await send(client, "odd")
    assert response.status_code == 502
    assert "odd.prompt: 'input.schema' must be a mapping" in response.json()["error"]["message"]
