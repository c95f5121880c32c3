"""The request decoder: extension fields classified (the memo bounded), JSON nesting bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from prompt_middleware.errors import InvalidPromptRequest, InvalidRequest
from prompt_middleware.request import (
    _MAX_CLASSIFIED,
    _classify,
    decode_body,
    decode_version,
    extension_fields,
)
from tests.engine.fake_servers import (
    URL,
    error_of,
)
from tests.engine.limits import (
    LimitsClient,
    limits_clients,
)

# --- 4. request.extension_fields -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"prompt_version":2,"model":"m","prompt_id":"p","messages":[],'
            b'"prompt_variables":{},"prompt_label":"l","prompt_other":1}',
            (("prompt_version", "prompt_id", "prompt_variables", "prompt_label"), ()),
        ),
        (
            b'{"model":"m","langfuse_public_key":"k","humanloop_x":1,"prompt_id":"p",'
            b'"my_langfuse_y":1,"Langfuse_z":1,"langfuse_secret_key":"s"}',
            (("prompt_id",), ("langfuse_public_key", "humanloop_x", "langfuse_secret_key")),
        ),
        (b'{"model":"m","messages":[],"temperature":0}', ((), ())),
        (b"{}", ((), ())),
    ],
    ids=["prompt", "prefixed", "none", "empty"],
)
def test_extension_fields_are_classified(
    body: bytes, expected: tuple[tuple[str, ...], tuple[str, ...]]
) -> None:
    fields = decode_body(body)
    assert extension_fields(fields) == expected
    assert extension_fields(fields) == expected  # the remembered answer is the same


def test_extension_field_classification_memo_is_bounded() -> None:
    sizes = []
    for i in range(_MAX_CLASSIFIED + 100):
        fields = {"model": msgspec.Raw(b'"m"'), f"field_{i}": msgspec.Raw(b"1")}
        assert extension_fields(fields) == ((), ())
        sizes.append(_classify.cache_info().currsize)
    assert max(sizes) == _MAX_CLASSIFIED
    assert extension_fields(decode_body(b'{"prompt_id":"p","humanloop_a":1}')) == (
        ("prompt_id",),
        ("humanloop_a",),
    )


@pytest.fixture
async def limits_client() -> AsyncIterator[LimitsClient]:
    async with limits_clients() as make:
        yield make


async def test_json_nesting_depth_is_bounded(limits_client: LimitsClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for body in (
        b'{"model": "gpt-4o", "metadata": ' + deep + b"}",
        b'{"prompt_id": "greeting", "prompt_variables": {"name": ' + deep + b"}}",
    ):
        response = await limits_client().post(URL, content=body)
        assert response.status_code == 400
        assert "nested too deeply" in error_of(response)["message"]


# --- decode_body, decode_version ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "The request body is not valid JSON"),
        (b"[1]", "The request body must be a JSON object."),
        (b'{"\xff":1}', "The request body is not valid JSON: Invalid UTF-8"),
    ],
    ids=["not-json", "not-an-object", "not-utf8"],
)
def test_a_body_that_is_not_a_json_object_is_a_400(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        decode_body(body)
    assert str(raised.value).startswith(message)


def test_values_stay_the_bytes_the_client_sent() -> None:
    fields = decode_body(b'{"a": 1e-7, "b":{"x" : [1,2]}}')
    assert {name: bytes(raw) for name, raw in fields.items()} == {
        "a": b"1e-7",
        "b": b'{"x" : [1,2]}',
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"3", 3), (b'"12"', 12), (b"null", None)],
)
def test_a_version_is_an_integer_or_a_string_of_digits(raw: bytes, expected: int | None) -> None:
    assert decode_version({"prompt_version": msgspec.Raw(raw)}) == expected


@pytest.mark.parametrize("raw", [b'"v2"', b'"\xd9\xa3"', b"1.5", b"true"])
def test_other_versions_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as raised:
        decode_version({"prompt_version": msgspec.Raw(raw)})
    assert raised.value.param == "prompt_version"


def test_a_version_below_one_is_refused() -> None:
    with pytest.raises(InvalidPromptRequest, match="1 or more"):
        decode_version({"prompt_version": msgspec.Raw(b"0")})
