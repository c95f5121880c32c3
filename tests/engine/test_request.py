"""The request decoder: extension fields classified (the memo bounded), JSON nesting bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from prompt_middleware.request import _MAX_CLASSIFIED, _classify, decode_body, extension_fields
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
