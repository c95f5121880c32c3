"""Hostile and malformed request bodies: always a 4xx JSON error or a correct rewrite.

Property tests (hypothesis) drive the rewrite engine directly, which is cheap, for thousands
of cases, and the middleware in process (``httpx2.ASGITransport``) for fewer, to check what a
client really gets. The stores are a :class:`MemoryStore` (text and chat prompts, with
placeholders) and a local folder, so managed paths are exercised, not only refusals.

The property, everywhere: the answer is either a 4xx whose body is the README's ("Errors")
``{"error": {message, type, param, code}}`` as ``application/json``, or a 2xx whose forwarded
body is a JSON object without any extension field (``prompt_*``, ``langfuse_*``,
``humanloop_*``); never a 5xx, never a Python traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx2
import msgspec
import pytest
import pytest_asyncio
import structlog
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from prompt_middleware import ModelEntry, PromptMiddleware, Settings
from prompt_middleware.engine import RewriteEngine
from prompt_middleware.errors import RequestError
from tests.conftest import RecordingApp
from tests.fakes.memory import MemoryStore, chat_prompt, text_prompt

URL = "/v1/chat/completions"
JSON_HEADERS: Final = {"content-type": "application/json"}
READ_FIELDS: Final = (
    "model",
    "prompt_id",
    "prompt_variables",
    "prompt_label",
    "prompt_version",
    "messages",
)
EXTENSION: Final = re.compile(r"prompt_(id|variables|label|version)$|langfuse_|humanloop_")
ERROR_CODES: Final = {
    400: {"invalid_request", "invalid_prompt_request"},
    404: {"prompt_not_found"},
    413: {"request_too_large"},
}
TRACEBACK_MARKERS: Final = ("Traceback (most recent call last)", 'File "/')
# The shared rig: small limits, so that generated input reaches them too.
LIMITS: Final[dict[str, Any]] = {
    "max_body_bytes": 256 * 1024,
    "max_variables": 16,
    "max_variables_bytes": 4096,
    "max_variables_depth": 4,
    "max_rendered_chars": 20_000,
}
# Hypothesis spends about a millisecond on each example whatever its size, so every example
# draws a batch of inputs: thousands of cases in a few seconds.
BATCH: Final = 10
FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
HTTP = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# One engine and one middleware serve the whole module, in its event loop: what a request
# leaves behind (a cached prompt) is what a long-running middleware carries anyway.
pytestmark = pytest.mark.asyncio(loop_scope="module")

_decode_fields = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_object = msgspec.json.Decoder(dict[str, Any]).decode


def memory_store() -> MemoryStore:
    return MemoryStore(
        text_prompt("greeting", "Hello {{name}}, welcome to {{ place }}."),
        text_prompt("greeting", "Hi {{name}} (v2)", version=2, labels=("staging",)),
        chat_prompt(
            "support/answer",
            [("system", "You help with {{product}}."), "messages"],
            config={"model": "gpt-4o", "temperature": 0.2, "max_tokens": 300},
        ),
        chat_prompt("fewshot", [("system", "Answer."), "examples", ("user", "{{question}}")]),
        text_prompt("odd-config", "Odd {{name}}", config=["not", "an", "object"]),
    )


def write_folder(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "hello.yaml").write_text("prompt: 'Hello {{name}} from a file'\n")
    (folder / "chat.prompt").write_text(
        "---\nmodel: gpt-4o-mini\ntemperature: 0.1\n---\nSystem: Be brief about {{topic}}.\n"
    )
    return folder


def make_settings(folder: Path) -> Settings:
    entry = ModelEntry(model_name="support-bot", model="mem/gpt-4o-mini", prompt_id="greeting")
    return Settings(default_store="mem", prompts_dir=str(folder), model_list=(entry,), **LIMITS)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("hostile") / "prompts")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(folder: Path) -> AsyncIterator[RewriteEngine]:
    engine = RewriteEngine(make_settings(folder), stores={"mem": memory_store()})
    yield engine
    await engine.aclose()


@dataclass
class Served:
    client: httpx2.AsyncClient
    app: RecordingApp


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(folder: Path) -> AsyncIterator[Served]:
    app = RecordingApp()
    middleware = PromptMiddleware(app, make_settings(folder), stores={"mem": memory_store()})
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=middleware), base_url="http://testserver"
    ) as client:
        yield Served(client, app)
    await middleware.engine.aclose()


# --- the property ------------------------------------------------------------------------------


def is_extension(name: str) -> bool:
    return EXTENSION.match(name) is not None


def check_error_body(status: int, body: bytes) -> dict[str, Any]:
    assert status in ERROR_CODES, status
    envelope = json.loads(body)
    assert set(envelope) == {"error"}
    error: dict[str, Any] = envelope["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["type"] in {"invalid_request_error", "not_found_error"}
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] in ERROR_CODES[status]
    return error


def check_forwarded(forwarded: bytes, *, managed: bool, strict_json: bool) -> None:
    """A JSON object without extension fields; ``strict_json``: valid UTF-8 JSON throughout."""
    fields = _decode_fields(forwarded)
    assert not [name for name in fields if is_extension(name)], fields.keys()
    if strict_json:
        body = _decode_object(forwarded)
        if managed:
            # The prompt's messages; the client's own go in as sent (README, "How a request
            # is rewritten").
            assert isinstance(body["messages"], list)


async def check_engine(engine: RewriteEngine, body: bytes, *, strict_json: bool = True) -> None:
    """The property at the engine: a 4xx RequestError, the body unchanged, or a clean rewrite."""
    with structlog.testing.capture_logs() as logs:
        try:
            result = await engine.rewrite(body)
        except RequestError as error:
            check_error_body(error.status_code, error.to_json())
            return
    assert not [log for log in logs if log["log_level"] in ("error", "critical")], logs
    # None: passed on byte for byte, which the engine does only for a plain OpenAI body.
    if result is None:
        check_forwarded(body, managed=False, strict_json=strict_json)
    else:
        check_forwarded(result.body, managed=result.prompt is not None, strict_json=strict_json)


async def check_http(served: Served, body: bytes, *, strict_json: bool = True) -> httpx2.Response:
    """The property as the client and the wrapped app see it."""
    served.app.requests.clear()
    with structlog.testing.capture_logs():
        response = await served.client.post(URL, content=body, headers=JSON_HEADERS)
    for marker in TRACEBACK_MARKERS:
        assert marker not in response.text
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json"
        check_error_body(response.status_code, response.content)
        assert served.app.requests == []
        return response
    assert (response.status_code, response.content) == (200, b'{"ok":true}')
    (received,) = served.app.requests
    managed = "x-prompt-name" in response.headers
    check_forwarded(received.body, managed=managed, strict_json=strict_json)
    return response


# --- strategies --------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
text_parts = st.lists(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=20)}), max_size=2
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "tool"]) | st.text(max_size=5)},
        optional={
            "content": st.text(max_size=30) | st.none() | text_parts | scalars,
            "tool_calls": json_values,
        },
    ),
    max_size=3,
)
variable_names = st.sampled_from(
    ["name", "place", "product", "question", "examples", "messages", "topic"]
) | st.text(max_size=8)
plausible: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(
        [
            "gpt-4o",
            "mem/gpt-4o",
            "mem/openai/gpt-4o",
            "file/gpt-4o",
            "dotprompt/gpt-4o",
            "langfuse/gpt-4o",
            "humanloop/gpt-4o",
            "support-bot",
            "mem/",
            "",
        ]
    ),
    "prompt_id": st.sampled_from(
        [
            "greeting",
            "support/answer",
            "fewshot",
            "odd-config",
            "hello",
            "chat",
            "missing",
            "",
            "../hello",
            "/etc/passwd",
            "a\x00b",
            "a\\b",
        ]
    ),
    "prompt_variables": st.dictionaries(variable_names, scalars | messages, max_size=5),
    "prompt_label": st.sampled_from(["production", "staging", "latest", "nope", ""]),
    "prompt_version": st.integers(min_value=-2, max_value=4)
    | st.sampled_from(["1", "2", "01", "-1", "1.0", "\u0663", "", "9" * 30]),
    "messages": messages,
}
# Any field: a plausible value, any text, or any JSON value at all (every wrong type).
field_values = {name: strategy | scalars | json_values for name, strategy in plausible.items()}
extra_fields = st.dictionaries(
    st.sampled_from(
        [
            "temperature",
            "stream",
            "tools",
            "user",
            "api_base",
            "langfuse_public_key",
            "langfuse_secret_key",
            "langfuse_host",
            "humanloop_api_key",
            "prompt_template",
        ]
    )
    | st.text(max_size=12),
    scalars | json_values,
    max_size=3,
)


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = dict(draw(extra_fields))
    body.update(draw(st.fixed_dictionaries({}, optional=field_values)))
    return body


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


# --- random JSON, random bodies ----------------------------------------------------------------


def batch(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(strategy, min_size=1, max_size=BATCH)


@FAST
@given(values=batch(json_values))
async def test_any_json_value_as_the_body(engine: RewriteEngine, values: list[Any]) -> None:
    for value in values:
        await check_engine(engine, encode(value))


@FAST
@given(bodies=batch(chat_bodies()))
@example(bodies=[{"prompt_id": "support/answer", "prompt_variables": {"product": 1}}])
@example(bodies=[{"prompt_id": "fewshot", "prompt_variables": {"examples": [], "question": 1}}])
@example(bodies=[{"model": "support-bot", "prompt_variables": {"name": None}}])
@example(bodies=[{"model": "file/gpt-4o", "prompt_id": "chat", "prompt_variables": {"topic": 1}}])
@example(bodies=[{"model": "dotprompt/x", "prompt_id": "hello", "prompt_label": "latest"}])
async def test_any_field_with_any_value(
    engine: RewriteEngine, bodies: list[dict[str, Any]]
) -> None:
    for body in bodies:
        await check_engine(engine, encode(body))


@HTTP
@given(bodies=batch(chat_bodies()))
async def test_any_field_with_any_value_through_the_middleware(
    served: Served, bodies: list[dict[str, Any]]
) -> None:
    for body in bodies:
        await check_http(served, encode(body))


@HTTP
@given(values=batch(json_values))
async def test_any_json_value_through_the_middleware(served: Served, values: list[Any]) -> None:
    for value in values:
        await check_http(served, encode(value))


@FAST
@given(variable_sets=batch(st.dictionaries(variable_names, json_values | messages, max_size=6)))
async def test_prompt_variables_of_any_shape(
    engine: RewriteEngine, variable_sets: list[dict[str, Any]]
) -> None:
    for variables in variable_sets:
        for prompt_id in ("greeting", "support/answer", "fewshot", "chat"):
            body = {"model": "m", "prompt_id": prompt_id, "prompt_variables": variables}
            await check_engine(engine, encode({**body, "messages": [{"role": "user"}]}))


# --- bytes -------------------------------------------------------------------------------------


@FAST
@given(bodies=batch(st.binary(max_size=200)))
@example(bodies=[b"", b"\x00", b"NaN", b"\xef\xbb\xbf{}", b"{}", b"[]", b'"x"'])
@example(bodies=[b'{"prompt_id": "greeting"} trailing', b'{"prompt_id": "greeting",}'])
async def test_arbitrary_bytes(engine: RewriteEngine, bodies: list[bytes]) -> None:
    for body in bodies:
        await check_engine(engine, body, strict_json=False)


@HTTP
@given(bodies=batch(st.binary(max_size=200)))
async def test_arbitrary_bytes_through_the_middleware(served: Served, bodies: list[bytes]) -> None:
    for body in bodies:
        await check_http(served, body, strict_json=False)


INVALID_UTF8: Final = [
    b"\xff",
    b"\xc3(",  # a lead byte without its continuation
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xc0\xaf",  # an overlong "/"
    b"\xf8\x88\x80\x80\x80",  # a five-byte sequence
]


@pytest.mark.parametrize(
    "template",
    [
        b'{"mo%sdel": "gpt-4o"}',
        b'{"model": "gpt-4o%s"}',
        b'{"prompt_id": "greeting%s"}',
        b'{"prompt_id": "greeting", "prompt_label": "production%s"}',
        b'{"prompt_id": "greeting", "prompt_version": "1%s"}',
        b'{"prompt_id": "greeting", "prompt_variables": {"name": "Ada%s"}}',
        b'{"prompt_id": "greeting", "prompt_variables": {"na%sme": "Ada"}}',
        b'{"prompt_id": "greeting", "langfuse_public_key": "pk%s"}',
    ],
)
async def test_invalid_utf8_in_a_field_that_is_read_is_a_400(
    served: Served, template: bytes
) -> None:
    for bad in INVALID_UTF8:
        response = await served.client.post(URL, content=template % bad, headers=JSON_HEADERS)
        assert response.status_code == 400, (bad, response.text)
        assert check_error_body(400, response.content)["code"] == "invalid_request"


@pytest.mark.parametrize("bad", INVALID_UTF8, ids=repr)
async def test_invalid_utf8_in_an_untouched_field_is_copied_through(
    served: Served, bad: bytes
) -> None:
    # README, "How a request is rewritten": fields the middleware does not read go on byte
    # for byte, bad bytes too; judging them is the upstream's business.
    untouched = b'"user": "caf' + bad + b'"'
    managed = b'{"prompt_id": "greeting", "prompt_variables": {"name": "A"}, ' + untouched + b"}"
    plain = b'{"model": "gpt-4o", ' + untouched + b"}"
    for body in (managed, plain):
        served.app.requests.clear()
        response = await served.client.post(URL, content=body, headers=JSON_HEADERS)
        assert response.status_code == 200
        assert b'"caf' + bad + b'"' in served.app.last.body
        check_forwarded(served.app.last.body, managed=body is managed, strict_json=False)
    assert served.app.last.body == plain


@st.composite
def with_invalid_utf8(draw: st.DrawFn) -> bytes:
    """A body whose string (key or value) somewhere holds invalid UTF-8."""
    body = encode(draw(chat_bodies()))
    quotes = [index for index, byte in enumerate(body) if byte == ord('"')]
    if not quotes:
        return body
    at = draw(st.sampled_from(quotes)) + 1  # just inside a string
    return body[:at] + draw(st.sampled_from(INVALID_UTF8)) + body[at:]


@HTTP
@given(bodies=batch(with_invalid_utf8()))
@example(bodies=[b'{"prompt_id": "greeting\xff"}'])
async def test_invalid_utf8_anywhere(served: Served, bodies: list[bytes]) -> None:
    for body in bodies:
        await check_http(served, body, strict_json=False)


# --- duplicate keys ----------------------------------------------------------------------------

duplicate_keys = st.lists(
    st.tuples(st.sampled_from([*READ_FIELDS, "temperature", "langfuse_host"]), json_values)
    | st.tuples(st.sampled_from(["prompt_id"]), st.sampled_from(["greeting", "fewshot", "x"]))
    | st.tuples(st.just("model"), plausible["model"]),
    min_size=1,
    max_size=8,
)


def object_with_pairs(pairs: list[tuple[str, Any]]) -> bytes:
    return b"{" + b",".join(encode(key) + b":" + encode(value) for key, value in pairs) + b"}"


class _Pairs(list[tuple[str, Any]]):
    pass


@HTTP
@given(batches=batch(duplicate_keys))
@example(batches=[[("prompt_id", "x"), ("prompt_id", "greeting")]])
@example(batches=[[("prompt_id", "greeting"), ("model", "gpt-4o"), ("prompt_id", None)]])
@example(batches=[[("model", "support-bot"), ("model", "gpt-4o")]])
async def test_duplicate_keys(served: Served, batches: list[list[tuple[str, Any]]]) -> None:
    for pairs in batches:
        body = object_with_pairs(pairs)
        await check_http(served, body)
        if served.app.requests and served.app.last.body != body:
            # A rewritten body is encoded afresh: every key once, none of them an extension.
            top = json.loads(served.app.last.body, object_pairs_hook=_Pairs)
            keys = [key for key, _ in top]
            assert len(keys) == len(set(keys))


async def test_the_last_duplicate_wins_as_everywhere_in_the_request(served: Served) -> None:
    body = object_with_pairs(
        [("prompt_id", "missing"), ("prompt_variables", {"name": "A"}), ("prompt_id", "greeting")]
    )
    response = await served.client.post(URL, content=body, headers=JSON_HEADERS)
    assert response.headers["x-prompt-name"] == "greeting"
    assert served.app.last.json()["messages"][0]["content"].startswith("Hello A,")


# --- every field with every wrong type ---------------------------------------------------------

WRONG: Final[dict[str, Any]] = {
    "null": None,
    "boolean": True,
    "integer": 7,
    "float": 1.5,
    "string": "text",
    "array": [1],
    "object": {"a": 1},
}
ACCEPTED: Final[dict[str, set[str]]] = {
    "model": {"string"},
    "prompt_id": {"string"},
    "prompt_variables": {"object"},
    "prompt_label": {"string"},
    "prompt_version": {"integer"},  # and a string of digits, which "text" is not
    "messages": {"array"},
}
# null is "absent" (README, "How a request is rewritten"), so what it gives depends on the field.
NULL_GIVES: Final[dict[str, tuple[int, str | None, str | None]]] = {
    "model": (200, None, None),
    "prompt_id": (400, "invalid_prompt_request", "prompt_id"),  # variables without a prompt
    "prompt_variables": (200, None, None),
    "prompt_label": (200, None, None),
    "prompt_version": (200, None, None),
    "messages": (400, "invalid_prompt_request", "prompt_variables"),  # unfilled placeholder
}


def _wrong_type_cases() -> list[Any]:
    return [
        pytest.param(field, kind, id=f"{field}={kind}")
        for field in READ_FIELDS
        for kind in WRONG
        if kind not in ACCEPTED[field]
    ]


@pytest.mark.parametrize(("field", "kind"), _wrong_type_cases())
async def test_every_field_with_every_wrong_type(served: Served, field: str, kind: str) -> None:
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "prompt_id": "support/answer",
        "prompt_variables": {"product": "x"},
        "messages": [{"role": "user", "content": "hi"}],
        field: WRONG[kind],
    }
    if field != "prompt_label":
        body["prompt_label"] = None if field == "prompt_version" else "production"
    response = await check_http(served, encode(body))
    status, code, param = NULL_GIVES[field] if kind == "null" else (400, "invalid_request", field)
    assert response.status_code == status
    if status != 200:
        error = check_error_body(status, response.content)
        assert (error["code"], error["param"]) == (code, param)


# --- deep nesting, huge values -----------------------------------------------------------------


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


NESTING_PLACES: Final = {
    "top level": b"%s",
    "untouched field": b'{"model": "gpt-4o", "metadata": %s}',
    "managed, untouched field": (
        b'{"prompt_id": "greeting", "prompt_variables": {"name": "A"}, "metadata": %s}'
    ),
    "prompt_variables": b'{"prompt_id": "greeting", "prompt_variables": {"name": %s}}',
    "messages": b'{"prompt_id": "support/answer", "prompt_variables": {}, "messages": %s}',
    "prompt_id": b'{"prompt_id": %s}',
    "model": b'{"model": %s}',
}


def _nesting_cases() -> list[Any]:
    return [
        pytest.param(
            template,
            depth,
            id=f"{place}-{depth}",
        )
        for place, template in NESTING_PLACES.items()
        for depth in (5, 64, 400, 1000, 100_000)
    ]


@pytest.mark.parametrize(("where", "depth"), _nesting_cases())
async def test_deep_nesting(served: Served, where: bytes, depth: int) -> None:
    response = await check_http(served, where % nested(depth))
    if depth >= 1000:
        assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "gpt-4o", "user": "x" * 200_000}, 200),
        ({"model": "m" * 200_000, "prompt_id": "greeting"}, 200),
        ({"prompt_id": "p" * 200_000}, 404),
        ({"prompt_id": "greeting", "prompt_label": "l" * 200_000}, 404),
        ({"prompt_id": "greeting", "prompt_variables": {"name": "x" * 5000}}, 400),
        ({"prompt_id": "greeting", "prompt_variables": {"n" * 5000: 1}}, 400),
        ({"prompt_id": "greeting", "prompt_version": 10**30}, 404),
        ({"prompt_id": "greeting", "prompt_variables": {"name": 10**4000}}, 200),
        ({"prompt_id": "greeting", "prompt_variables": {"name": 10**4200}}, 400),
        ({"prompt_id": "greeting", "prompt_variables": {"name": "x" * 4000}}, 200),
        ({"model": "gpt-4o", "user": "x" * 300_000}, 413),
    ],
    ids=lambda value: str(value)[:60],
)
async def test_huge_values(served: Served, body: dict[str, Any], status: int) -> None:
    response = await check_http(served, encode(body))
    assert response.status_code == status


@pytest.mark.parametrize("digits", [4301, 100_000])
async def test_a_prompt_version_of_thousands_of_digits_is_a_400(
    served: Served, digits: int
) -> None:
    body = {"prompt_id": "greeting", "prompt_version": "9" * digits}
    response = await served.client.post(URL, content=encode(body), headers=JSON_HEADERS)
    assert response.status_code == 400
    assert check_error_body(400, response.content)["param"] == "prompt_version"


@FAST
@given(
    cases=batch(
        st.tuples(st.text(max_size=3000), st.integers(min_value=0, max_value=40))
        | st.tuples(st.sampled_from(["{{name}}", "x" * 1000, ""]), st.integers(0, 10_000))
    )
)
async def test_a_variable_repeated_never_renders_past_the_limit(
    engine: RewriteEngine, cases: list[tuple[str, int]]
) -> None:
    for text, repeat in cases:
        value = text * repeat
        body = encode({"prompt_id": "greeting", "prompt_variables": {"name": value}})
        await check_engine(engine, body)
        try:
            result = await engine.rewrite(body)
        except RequestError:
            continue
        assert result is not None
        rendered = _decode_object(result.body)["messages"][0]["content"]
        assert len(rendered) <= LIMITS["max_rendered_chars"]
        assert rendered.startswith(f"Hello {value}, welcome to ")
