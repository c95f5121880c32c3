"""The span's name and attributes, built from the body sent on, the prompt and the answer."""

from __future__ import annotations

import json

import msgspec
import pytest

from prompt_middleware.request import decode_body
from prompt_middleware.tracing.answer import Answer, Usage
from prompt_middleware.tracing.attributes import (
    PromptLink,
    answer_attributes,
    error_type_of_status,
    prompt_attributes,
    request_attributes,
    span_name,
)

MESSAGES = (
    b'[{"role":"system","content":"You are \\u00e9l\\u00e8ve."},{"role": "user", "content": "Hi"}]'
)
BODY = (
    b'{"model":"gpt-4o","messages":'
    + MESSAGES
    + b',"temperature":0.2,"max_tokens":300,"top_p":1,"stop":["\\n\\n","END"],'
    b'"seed":12345678901234567890123,"tools":[{"type":"function"}],"logit_bias":{"1":2},'
    b'"response_format":{"type":"json_object"},"user":"user-42","stream":true,'
    b'"metadata":{"k":"v"},"parallel_tool_calls":false,"n":null}'
)


def test_request_attributes_name_the_model_and_the_parameters_sent_on() -> None:
    model, attributes = request_attributes(decode_body(BODY), content=True)
    assert model == "gpt-4o"
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 300,
        "gen_ai.request.top_p": 1,
        "gen_ai.request.stop": ("\n\n", "END"),
        "gen_ai.request.parallel_tool_calls": False,
        "user.id": "user-42",
        "langfuse.user.id": "user-42",
        # The messages as the JSON text sent on, byte for byte.
        "langfuse.observation.input": MESSAGES.decode(),
    }


def test_without_content_the_messages_are_not_recorded() -> None:
    _, attributes = request_attributes(decode_body(BODY), content=False)
    assert "langfuse.observation.input" not in attributes
    assert attributes["gen_ai.request.temperature"] == 0.2


def test_a_request_without_model_or_user() -> None:
    model, attributes = request_attributes(decode_body(b'{"model": 5, "user": ""}'), content=True)
    assert model is None
    assert attributes == {"gen_ai.operation.name": "chat"}


@pytest.mark.parametrize(("model", "name"), [("gpt-4o", "chat gpt-4o"), (None, "chat")])
def test_span_name(model: str | None, name: str) -> None:
    assert span_name(model) == name


def test_a_langfuse_prompt_is_linked_by_name_and_integer_version() -> None:
    link = PromptLink(
        name="support/answer",
        version=3,
        store="langfuse",
        cache="hit",
        label="production",
        variant="b",
    )
    assert prompt_attributes(link) == {
        "langfuse.observation.type": "generation",
        "langfuse.observation.prompt.name": "support/answer",
        "langfuse.observation.prompt.version": 3,
        "langfuse.observation.metadata.prompt_store": "langfuse",
        "langfuse.observation.metadata.prompt_cache": "hit",
        "langfuse.observation.metadata.prompt_label": "production",
        "langfuse.observation.metadata.experiment_variant": "b",
    }


@pytest.mark.parametrize(
    "link",
    [
        PromptLink(name="greeting", version=2, store="file", cache="miss"),
        PromptLink(name="greeting", version="v2", store="langfuse", cache="miss"),
    ],
)
def test_other_stores_and_string_versions_are_named_in_the_metadata(link: PromptLink) -> None:
    # Langfuse drops a generation whose prompt.name comes without prompt.version.
    attributes = prompt_attributes(link)
    assert "langfuse.observation.prompt.name" not in attributes
    assert "langfuse.observation.prompt.version" not in attributes
    assert "langfuse.observation.metadata.prompt_label" not in attributes  # a version's
    assert "langfuse.observation.metadata.experiment_variant" not in attributes
    assert attributes["langfuse.observation.metadata.prompt_name"] == "greeting"
    assert attributes["langfuse.observation.metadata.prompt_version"] == link.version
    assert attributes["langfuse.observation.type"] == "generation"


def test_answer_attributes() -> None:
    answer = Answer(
        model="gpt-4o-2024-08-06",
        response_id="chatcmpl-1",
        usage=Usage(prompt_tokens=12, completion_tokens=3),
        output='{"role":"assistant","content":"Bonjour"}',
    )
    assert answer_attributes(answer) == {
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 3,
        "langfuse.observation.output": '{"role":"assistant","content":"Bonjour"}',
    }


def test_usage_that_does_not_fit_otlp_integers_is_left_out() -> None:
    answer = Answer(usage=Usage(prompt_tokens=2**70, completion_tokens=1))
    assert answer_attributes(answer) == {"gen_ai.usage.output_tokens": 1}
    assert answer_attributes(Answer()) == {}


@pytest.mark.parametrize(
    ("status", "error"), [(200, None), (399, None), (400, "400"), (502, "502")]
)
def test_error_type_of_status(status: int, error: str | None) -> None:
    assert error_type_of_status(status) == error


def test_request_attributes_read_every_kind_of_json_value_safely() -> None:
    body = msgspec.json.encode(
        {"model": "m", "temperature": "hot", "max_tokens": [1, 2], "stop": [], "top_p": None}
    )
    _, attributes = request_attributes(decode_body(body), content=False)
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m",
        "gen_ai.request.temperature": "hot",
    }
    assert json.dumps(attributes)  # every value is a plain attribute value
