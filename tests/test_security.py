"""Security: a client cannot steer the middleware, escape the prompt folder, split a header,
read a secret, or exhaust memory past the configured limits.

* No body field changes which host is contacted: the fake Langfuse and Humanloop run on
  uvicorn on 127.0.0.1 and a TCP listener stands in for the attacker's host; it must see no
  connection, whatever the body says and whether per-request credentials are allowed.
* Prompt names cannot escape: the local folder refuses traversal, and Langfuse gets every name
  percent-encoded as exactly one path segment (asserted on the raw path the fake received).
* ``x-prompt-name`` carries any prompt name as printable ASCII without CR/LF (property test).
* Secrets are in no log line, error message, repr or ``/metrics``; the sidecar's keys are
  each compared with ``hmac.compare_digest``, all of them on every request.
* The limits of CONTRACT §7 and their settings: body size, ``prompt_variables`` entries,
  bytes and depth, rendered prompt size.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import httpx
import pytest
import pytest_asyncio
import structlog
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prompt_middleware import ConfigurationError, PromptMiddleware, Secret, Settings
from prompt_middleware.prompts import Prompt
from prompt_middleware.sidecar import Sidecar
from tests.conftest import RecordingApp
from tests.fakes.humanloop import FakeHumanloop
from tests.fakes.langfuse import FakeLangfuse
from tests.fakes.memory import MemoryStore, chat_prompt, text_prompt
from tests.fakes.server import serve_in_background

URL = "/v1/chat/completions"
PUBLIC, SECRET = "pk-lf-security", "sk-lf-security-secret"
HUMANLOOP_KEY = "hl_sk_security_secret"
ATTACKER_PUBLIC, ATTACKER_SECRET = "pk-lf-attacker", "sk-lf-attacker-secret"
SAFETY_NET_SECONDS = 10
# Tests that use the fake stores run in the module's event loop, where their uvicorn runs.
ON_THE_SERVERS_LOOP: Final = pytest.mark.asyncio(loop_scope="module")


def basic(public: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


# --- (a) no body field chooses the host ------------------------------------------------------


@dataclass
class Trap:
    """A TCP listener on 127.0.0.1 that counts every connection it is offered."""

    server: asyncio.Server
    connections: list[int]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest_asyncio.fixture(loop_scope="module")
async def trap() -> AsyncIterator[Trap]:
    connections: list[int] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    async with server:
        yield Trap(server, connections)


class Switchboard:
    """The ASGI app of one of the module's uvicorn servers: each test plugs in its own fake
    (starting and stopping uvicorn costs a fifth of a second: once per module is enough)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no fake plugged in"
        await self.app(scope, receive, send)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers() -> AsyncIterator[tuple[Switchboard, str, Switchboard, str]]:
    langfuse, humanloop = Switchboard(), Switchboard()
    async with (
        serve_in_background(langfuse) as langfuse_url,
        serve_in_background(humanloop) as humanloop_url,
    ):
        yield langfuse, langfuse_url, humanloop, humanloop_url + "/v5"


@dataclass
class Stores:
    langfuse: FakeLangfuse
    langfuse_url: str
    humanloop: FakeHumanloop
    humanloop_url: str


@pytest.fixture
def stores(servers: tuple[Switchboard, str, Switchboard, str]) -> Stores:
    """A fresh fake Langfuse and Humanloop behind the module's servers."""
    langfuse_board, langfuse_url, humanloop_board, humanloop_url = servers
    langfuse = FakeLangfuse(public_key=PUBLIC, secret_key=SECRET)
    langfuse.add_prompt("greeting", "Hello {{name}}!", labels=["production"])
    humanloop = FakeHumanloop(api_key=HUMANLOOP_KEY)
    humanloop.add_prompt("tagline", "A tagline for {{name}}", deploy_to=["production"])
    langfuse_board.app, humanloop_board.app = langfuse.app, humanloop.app
    return Stores(langfuse, langfuse_url, humanloop, humanloop_url)


def hostile_fields(url: str) -> dict[str, Any]:
    """Every field a client might hope the middleware reads a host or a key from."""
    host = url.removeprefix("http://")
    return {
        "langfuse_host": url,
        "langfuse_base_url": url,
        "langfuse_baseurl": url,
        "langfuse_url": url,
        "api_base": url,
        "base_url": url,
        "api_url": url,
        "host": host,
        "url": url,
        "humanloop_base_url": url + "/v5",
        "humanloop_api_key": "hl_sk_attacker",
        "humanloop_host": url,
        "api_key": "sk-attacker",
        "upstream_base_url": url,
        "extra_headers": {"host": host},
        "metadata": {
            "langfuse_host": url,
            "langfuse_public_key": ATTACKER_PUBLIC,
            "langfuse_secret_key": ATTACKER_SECRET,
        },
    }


@ON_THE_SERVERS_LOOP
@pytest.mark.parametrize("allow_request_credentials", [False, True], ids=["keys-off", "keys-on"])
async def test_no_body_field_changes_the_host(
    stores: Stores, trap: Trap, allow_request_credentials: bool
) -> None:
    app = RecordingApp()
    settings = Settings(
        langfuse_public_key=PUBLIC,
        langfuse_secret_key=Secret(SECRET),
        langfuse_base_url=stores.langfuse_url,
        humanloop_api_key=Secret(HUMANLOOP_KEY),
        humanloop_base_url=stores.humanloop_url,
        allow_request_credentials=allow_request_credentials,
        cache_ttl_seconds=0,  # every request goes to the store again
    )
    middleware = PromptMiddleware(app, settings)
    hostile = hostile_fields(trap.url)
    attacker_keys = {"langfuse_public_key": ATTACKER_PUBLIC, "langfuse_secret_key": ATTACKER_SECRET}
    honest_keys = {"langfuse_public_key": PUBLIC, "langfuse_secret_key": SECRET}
    variables = {"prompt_variables": {"name": "Ada"}}
    requests: dict[str, dict[str, Any]] = {
        "langfuse": {"model": "langfuse/gpt-4o", "prompt_id": "greeting", **variables},
        "default store": {"model": "gpt-4o", "prompt_id": "greeting", **variables},
        "langfuse, attacker keys": {
            "model": "langfuse/gpt-4o",
            "prompt_id": "greeting",
            **variables,
            **attacker_keys,
        },
        "langfuse, honest keys": {
            "model": "langfuse/gpt-4o",
            "prompt_id": "greeting",
            **variables,
            **honest_keys,
        },
        "langfuse, url as prompt": {"model": "langfuse/x", "prompt_id": trap.url + "/greeting"},
        "langfuse, //host as prompt": {
            "model": "langfuse/x",
            "prompt_id": "//" + trap.url.removeprefix("http://") + "/greeting",
        },
        "langfuse, url as label": {
            "model": "langfuse/x",
            "prompt_id": "greeting",
            "prompt_label": "x@" + trap.url + "#",
        },
        "humanloop": {"model": "humanloop/gpt-4o", "prompt_id": "tagline", **variables},
        "model named as a url": {"model": "langfuse/" + trap.url, "prompt_id": "greeting"},
    }
    statuses: dict[str, int] = {}
    async with client_for(middleware) as client, asyncio.timeout(SAFETY_NET_SECONDS):
        for name, body in requests.items():
            response = await client.post(URL, json={**hostile, **body})
            statuses[name] = response.status_code
            await middleware.engine.cache.drain()
    await middleware.engine.aclose()

    assert trap.connections == []
    attacker_status = 502 if allow_request_credentials else 200  # refused by the real host
    assert statuses == {
        "langfuse": 200,
        "default store": 200,
        "langfuse, attacker keys": attacker_status,
        "langfuse, honest keys": 200,
        "langfuse, url as prompt": 404,
        "langfuse, //host as prompt": 404,
        "langfuse, url as label": 404,
        "humanloop": 200,
        "model named as a url": 200,
    }
    # Every store request went to the configured hosts, with configured (or allowed) keys.
    sent_keys = {request.authorization for request in stores.langfuse.requests}
    expected_keys = {basic(PUBLIC, SECRET)}
    if allow_request_credentials:
        expected_keys.add(basic(ATTACKER_PUBLIC, ATTACKER_SECRET))
    assert sent_keys == expected_keys
    assert stores.langfuse.fetch_count == 8
    assert [request.api_key for request in stores.humanloop.requests] == [HUMANLOOP_KEY]
    for received in app.requests:
        sent = received.json()
        assert not [key for key in sent if key.startswith(("langfuse_", "humanloop_"))]


# --- (b) prompt names cannot escape ------------------------------------------------------------

SECRET_FILE_TEXT: Final = "TOP-SECRET-FILE-CONTENT"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A prompt folder with a secret prompt file and a secret text file just outside it."""
    prompts = tmp_path / "prompts"
    (prompts / "sub").mkdir(parents=True)
    (prompts / "greeting.yaml").write_text("prompt: 'Hello {{name}}'\n")
    (prompts / "sub" / "inner.yaml").write_text("prompt: 'Inner'\n")
    for name in ("secret.yaml", "secret.prompt"):
        (tmp_path / name).write_text(f"prompt: '{SECRET_FILE_TEXT}'\n")
    (tmp_path / "secret").write_text(SECRET_FILE_TEXT)
    (prompts / "link.yaml").symlink_to(tmp_path / "secret.yaml")
    (prompts / "out").symlink_to(tmp_path, target_is_directory=True)
    return prompts


def traversal_names(folder: Path) -> list[str]:
    outside = folder.parent / "secret"
    return [
        "../secret",
        "../../secret",
        "sub/../../secret",
        "sub/./../../secret",
        "./../secret",
        str(outside),
        str(outside) + ".yaml",
        "/etc/passwd",
        "..\\secret",
        "sub\\..\\..\\secret",
        "secret\x00",
        "greeting\x00/../../secret",
        "%2e%2e%2fsecret",
        "..%2fsecret",
        "%2e%2e/secret",
        "..%5csecret",
        "%252e%252e%252fsecret",
        "....//secret",
        ".../secret",
        "~/secret",
        "file://" + str(outside),
        "\uff0e\uff0e/secret",  # fullwidth dots
        "link",
        "out/secret",
        "out/prompts/greeting",
        "..",
        ".",
        "",
    ]


@pytest.mark.parametrize("model", ["file/gpt-4o", "dotprompt/gpt-4o"])
async def test_prompt_names_cannot_leave_the_prompt_folder(folder: Path, model: str) -> None:
    app = RecordingApp()
    middleware = PromptMiddleware(app, Settings(prompts_dir=str(folder)))
    outcomes: dict[str, tuple[int, str]] = {}
    async with client_for(middleware) as client:
        for name in traversal_names(folder):
            for extra in ({}, {"prompt_version": 1}, {"prompt_label": "latest"}):
                body = {"model": model, "prompt_id": name, **extra}
                response = await client.post(URL, json=body)
                assert SECRET_FILE_TEXT not in response.text
                outcomes[f"{name!r} {extra}"] = (response.status_code, error_of(response)["code"])
        served = await client.post(URL, json={"model": model, "prompt_id": "sub/inner"})
    await middleware.engine.aclose()

    assert served.status_code == 200  # the folder itself is served
    allowed = {(400, "invalid_prompt_request"), (404, "prompt_not_found")}
    assert {name: o for name, o in outcomes.items() if o not in allowed} == {}
    assert [r for r in app.requests if SECRET_FILE_TEXT.encode() in r.body] == []
    # The obvious traversals are refused outright, not merely not found.
    for name in ("../secret", str(folder.parent / "secret"), "..\\secret", "secret\x00"):
        assert outcomes[f"{name!r} {{}}"][0] == 400


@ON_THE_SERVERS_LOOP
@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("a/b", b"a%2Fb"),
        ("../x", b"..%2Fx"),
        ("x?y=1", b"x%3Fy%3D1"),
        ("#frag", b"%23frag"),
        ("%2F", b"%252F"),
        ("..", b"%2E%2E"),
        (".", b"%2E"),
        ("a b+c", b"a%20b%2Bc"),
        ("caf\u00e9", b"caf%C3%A9"),
        ("a\\b", b"a%5Cb"),
        ("a;b=c&d", b"a%3Bb%3Dc%26d"),
        ("@evil.example:80", b"%40evil.example%3A80"),
    ],
)
async def test_langfuse_gets_the_name_as_one_encoded_segment(
    stores: Stores, name: str, segment: bytes
) -> None:
    stores.langfuse.add_prompt(name, f"The prompt named {name}", labels=["production"])
    app = RecordingApp()
    settings = Settings(
        langfuse_public_key=PUBLIC,
        langfuse_secret_key=Secret(SECRET),
        langfuse_base_url=stores.langfuse_url,
    )
    middleware = PromptMiddleware(app, settings)
    async with client_for(middleware) as client:
        response = await client.post(URL, json={"model": "langfuse/m", "prompt_id": name})
    await middleware.engine.aclose()

    (request,) = stores.langfuse.requests
    assert request.raw_path == b"/api/public/v2/prompts/" + segment
    assert request.query_string == b"label=production"
    assert response.status_code == 200
    assert app.last.json()["messages"] == [{"role": "user", "content": f"The prompt named {name}"}]


# --- (c) headers built from client input -------------------------------------------------------

HEADERS_OF_A_MANAGED_ANSWER: Final = {
    b"content-type",
    b"content-length",
    b"x-prompt-name",
    b"x-prompt-version",
    b"x-prompt-store",
    b"x-prompt-cache",
    b"x-prompt-middleware-overhead-ms",
}
PRINTABLE_ASCII: Final = re.compile(rb"[\x20-\x7e]*")
# RFC 9110 field-value, as h11 enforces it: no leading or trailing whitespace.
FIELD_VALUE: Final = re.compile(rb"[^\x00\s]+(?:[ \t]+[^\x00\s]+)*")


@pytest.fixture
async def header_rig() -> AsyncIterator[tuple[httpx.AsyncClient, MemoryStore]]:
    store = MemoryStore()
    middleware = PromptMiddleware(
        RecordingApp(), Settings(default_store="mem"), stores={"mem": store}
    )
    async with client_for(middleware) as client:
        yield client, store
    await middleware.engine.aclose()


async def served_headers(
    rig: tuple[httpx.AsyncClient, MemoryStore], name: str, version: int | str
) -> list[tuple[bytes, bytes]]:
    client, store = rig
    # A label of its own for each example, so that no example is served another's cache entry.
    label = f"l{len(store.calls)}"
    store.prompts = [Prompt(name=name, version=version, type="text", prompt="x", labels=(label,))]
    response = await client.post(URL, json={"model": "m", "prompt_id": name, "prompt_label": label})
    assert response.status_code == 200
    raw: list[tuple[bytes, bytes]] = response.headers.raw
    return raw


# Names that begin or end with a space are the subject of test_prompt_headers_are_valid_...
NAMES: Final = st.text(min_size=1, max_size=60).filter(lambda name: name.strip(" ") == name)
HEADER_SETTINGS: Final = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@HEADER_SETTINGS
@given(name=NAMES, version=st.integers(min_value=1, max_value=10**6) | st.text(min_size=1))
@example(name="evil\r\nset-cookie: x=1", version=1)
@example(name="a\nb\rc\x00d\x7fe\u2028f\u0085g", version="prv_\r\nx-injected: 1")
@example(name="caf\u00e9 \U0001f600 %41", version=2)
async def test_prompt_headers_are_printable_ascii_and_round_trip(
    header_rig: tuple[httpx.AsyncClient, MemoryStore], name: str, version: int | str
) -> None:
    headers = await served_headers(header_rig, name, version)
    assert {key for key, _ in headers} == HEADERS_OF_A_MANAGED_ANSWER  # nothing injected
    for _, value in headers:
        assert PRINTABLE_ASCII.fullmatch(value), value
    values = dict(headers)
    assert unquote(values[b"x-prompt-name"].decode("ascii")) == name
    assert unquote(values[b"x-prompt-version"].decode("ascii")) == str(version)


@HEADER_SETTINGS
@given(name=st.text(min_size=1, max_size=30))
@example(name="greeting ")
async def test_prompt_headers_are_valid_field_values(
    header_rig: tuple[httpx.AsyncClient, MemoryStore], name: str
) -> None:
    for _, value in await served_headers(header_rig, name, 1):
        assert FIELD_VALUE.fullmatch(value), value


# --- (d) secrets never in logs, errors or /metrics ---------------------------------------------


def _all_secrets() -> list[str]:
    return [
        SECRET,
        ATTACKER_SECRET,
        HUMANLOOP_KEY,
        "sk-lf-wrong-configured",
        "sk-sidecar-key",
        base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode(),
        base64.b64encode(f"{ATTACKER_PUBLIC}:{ATTACKER_SECRET}".encode()).decode(),
    ]


def assert_no_secret(*texts: str) -> None:
    shown = "\n".join(texts)
    assert [secret for secret in _all_secrets() if secret in shown] == []


@ON_THE_SERVERS_LOOP
async def test_no_secret_in_logs_errors_or_metrics(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream = RecordingApp()
    settings = Settings(
        langfuse_public_key=PUBLIC,
        langfuse_secret_key=Secret(SECRET),
        langfuse_base_url=stores.langfuse_url,
        humanloop_api_key=Secret(HUMANLOOP_KEY),
        humanloop_base_url=stores.humanloop_url,
        allow_request_credentials=True,
        api_keys=(Secret("sk-sidecar-key"),),
    )
    sidecar = Sidecar(settings, upstream=upstream)
    wrong = PromptMiddleware(
        RecordingApp(),
        Settings(
            langfuse_public_key=PUBLIC,
            langfuse_secret_key=Secret("sk-lf-wrong-configured"),
            langfuse_base_url=stores.langfuse_url,
        ),
    )
    auth = {"authorization": "Bearer sk-sidecar-key"}
    greeting = {"model": "langfuse/m", "prompt_id": "greeting", "prompt_variables": {"name": "A"}}
    responses: list[httpx.Response] = []
    with structlog.testing.capture_logs() as logs:
        async with client_for(sidecar) as client:
            for body in (
                {**greeting, "langfuse_public_key": PUBLIC, "langfuse_secret_key": SECRET},
                {
                    **greeting,
                    "langfuse_public_key": ATTACKER_PUBLIC,
                    "langfuse_secret_key": ATTACKER_SECRET,
                },
                {**greeting, "langfuse_secret_key": ATTACKER_SECRET},  # half a key pair: 400
                {"model": "humanloop/m", "prompt_id": "missing"},
            ):
                responses.append(await client.post(URL, json=body, headers=auth))
            responses.append(await client.post(URL, json=greeting))  # no sidecar key: 401
            metrics = await client.get("/metrics")
        async with client_for(wrong) as client:
            responses.append(await client.post(URL, json=greeting))  # Langfuse answers 401
        with pytest.raises(ConfigurationError) as config_error:
            PromptMiddleware(
                RecordingApp(),
                Settings(
                    langfuse_public_key=PUBLIC,
                    langfuse_secret_key=Secret(SECRET),
                    langfuse_base_url=f"http://{PUBLIC}:{SECRET}@127.0.0.1:1",
                ),
            )
    await sidecar.middleware.engine.aclose()
    await wrong.engine.aclose()

    assert [r.status_code for r in responses] == [200, 502, 400, 404, 401, 502]
    assert "authorization" not in upstream.last.headers  # the sidecar key is not passed on
    assert_no_secret(
        *(r.text + repr(r.headers) for r in responses),
        metrics.text,
        json.dumps(logs, default=repr),
        caplog.text,
        str(config_error.value),
        repr(settings),
        str(settings),
        *(r.body.decode() for r in upstream.requests),
    )


def test_no_secret_in_configuration_errors(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: team\n"
        "    litellm_params:\n"
        "      model: langfuse/gpt-4o\n"
        f"      langfuse_secret: {SECRET}\n"
        f"      api_key: {ATTACKER_SECRET}\n"
        "      prompt_version: not-a-number\n"
    )
    environments = [
        {"PROMPT_MIDDLEWARE_CONFIG": str(config), "LANGFUSE_SECRET_KEY": SECRET},
        {"LANGFUSE_SECRET_KEY": SECRET, "PROMPT_MIDDLEWARE_MAX_BODY_BYTES": "lots"},
        {"PROMPT_MIDDLEWARE_UPSTREAM_API_KEY": HUMANLOOP_KEY, "PROMPT_MIDDLEWARE_PORT": "-1"},
    ]
    with structlog.testing.capture_logs() as logs:
        for environ in environments:
            with pytest.raises(ConfigurationError) as caught:
                Settings.from_env(environ)
            assert_no_secret(str(caught.value), repr(caught.value))
    assert_no_secret(json.dumps(logs, default=repr))


async def test_sidecar_keys_are_all_compared_with_compare_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = ("sk-sidecar-one", "sk-sidecar-two", "sk-sidecar-three")
    compared: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def recording_compare(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr("prompt_middleware.sidecar.app.hmac.compare_digest", recording_compare)
    upstream = RecordingApp()
    sidecar = Sidecar(Settings(api_keys=tuple(Secret(k) for k in keys)), upstream=upstream)
    body = {"model": "gpt-4o", "messages": []}
    async with client_for(sidecar) as client:
        statuses = []
        for offered in ("sk-sidecar-one", "sk-sidecar-three", "sk-sidecar-thre", ""):
            compared.clear()
            response = await client.post(
                URL, json=body, headers={"authorization": f"Bearer {offered}"}
            )
            statuses.append(response.status_code)
            # Every key is compared, with hmac.compare_digest, however early one matches.
            assert sorted(b for _, b in compared) == sorted(k.encode() for k in keys)
    await sidecar.middleware.engine.aclose()
    assert statuses == [200, 200, 401, 401]


# --- (e) the limits and their settings ---------------------------------------------------------


def limits_store() -> MemoryStore:
    return MemoryStore(
        text_prompt("greeting", "Hello {{name}}"),
        chat_prompt("shots", [("system", "S"), "examples"]),
        text_prompt("echo", "{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}{{x}}"),
    )


LimitsClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def limits_client() -> AsyncIterator[LimitsClient]:
    middlewares: list[PromptMiddleware] = []
    clients: list[httpx.AsyncClient] = []

    def make(settings: Settings | None = None, **overrides: Any) -> httpx.AsyncClient:
        middleware = PromptMiddleware(
            RecordingApp(),
            settings or Settings(default_store="mem", **overrides),
            stores={"mem": limits_store()},
        )
        middlewares.append(middleware)
        clients.append(client_for(middleware))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()
    for middleware in middlewares:
        await middleware.engine.aclose()


def test_the_limits_have_defaults_and_settings() -> None:
    defaults = Settings.from_env({})
    assert (
        defaults.max_body_bytes,
        defaults.max_variables,
        defaults.max_variables_bytes,
        defaults.max_variables_depth,
        defaults.max_rendered_chars,
    ) == (16 * 1024 * 1024, 256, 1024 * 1024, 32, 4 * 1024 * 1024)
    configured = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_MAX_BODY_BYTES": "1000",
            "PROMPT_MIDDLEWARE_MAX_VARIABLES": "3",
            "PROMPT_MIDDLEWARE_MAX_VARIABLES_BYTES": "100",
            "PROMPT_MIDDLEWARE_MAX_VARIABLES_DEPTH": "2",
            "PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS": "50",
        }
    )
    assert (
        configured.max_body_bytes,
        configured.max_variables,
        configured.max_variables_bytes,
        configured.max_variables_depth,
        configured.max_rendered_chars,
    ) == (1000, 3, 100, 2, 50)
    for name in ("MAX_BODY_BYTES", "MAX_VARIABLES_DEPTH"):
        with pytest.raises(ConfigurationError, match=f"PROMPT_MIDDLEWARE_{name}="):
            Settings.from_env({f"PROMPT_MIDDLEWARE_{name}": "0"})


def padded(size: int) -> bytes:
    """An unmanaged body of exactly ``size`` bytes."""
    head, tail = b'{"model":"gpt-4o","user":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def test_body_size_limit(limits_client: LimitsClient) -> None:
    client = limits_client(max_body_bytes=1000)

    async def streamed(body: bytes) -> Any:  # no content-length: chunked
        for start in range(0, len(body), 300):
            yield body[start : start + 300]

    at_limit = await client.post(URL, content=padded(1000))
    over = await client.post(URL, content=padded(1001))
    over_streamed = await client.post(URL, content=streamed(padded(1001)))
    assert at_limit.status_code == 200
    for response in (over, over_streamed):
        assert response.status_code == 413
        error = error_of(response)
        assert error["code"] == "request_too_large"
        assert "PROMPT_MIDDLEWARE_MAX_BODY_BYTES" in error["message"]


async def test_a_body_larger_than_its_content_length_is_still_cut_off() -> None:
    app = RecordingApp()
    middleware = PromptMiddleware(app, Settings(max_body_bytes=1000))
    chunks = [padded(2000)[:700], padded(2000)[700:]]
    sent: list[Message] = []

    async def receive() -> Message:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": URL,
        "headers": [(b"content-length", b"10")],  # a lie
    }
    await middleware(scope, receive, send)
    await middleware.engine.aclose()
    assert sent[0]["status"] == 413
    assert app.requests == []


async def test_the_default_body_limit_is_16_mib(limits_client: LimitsClient) -> None:
    client = limits_client(Settings())
    response = await client.post(URL, content=padded(16 * 1024 * 1024 + 1))
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("variables", "allowed"),
    [
        ({"a": 1, "b": 2, "name": 3}, True),
        ({"a": 1, "b": 2, "c": 3, "name": 4}, False),
    ],
)
async def test_prompt_variables_entries_limit(
    limits_client: LimitsClient, variables: dict[str, Any], allowed: bool
) -> None:
    await check_limit(
        limits_client(max_variables=3),
        {"prompt_id": "greeting", "prompt_variables": variables},
        allowed,
        "PROMPT_MIDDLEWARE_MAX_VARIABLES)",
    )


@pytest.mark.parametrize(("size", "allowed"), [(100, True), (101, False)])
async def test_prompt_variables_bytes_limit(
    limits_client: LimitsClient, size: int, allowed: bool
) -> None:
    raw = b'{"name":"' + b"x" * (size - 11) + b'"}'
    assert len(raw) == size
    body = b'{"model":"m","prompt_id":"greeting","prompt_variables":' + raw + b"}"
    client = limits_client(max_variables_bytes=100)
    response = await client.post(URL, content=body)
    assert_limit(response, allowed, "PROMPT_MIDDLEWARE_MAX_VARIABLES_BYTES")


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ({"a": {"b": 1}}, True),  # the variables object, then two levels: depth 3
        ({"a": {"b": {"c": 1}}}, False),
        ([[1]], True),
        ([[[1]]], False),
    ],
)
async def test_prompt_variables_depth_limit(
    limits_client: LimitsClient, name: Any, allowed: bool
) -> None:
    await check_limit(
        limits_client(max_variables_depth=3),
        {"prompt_id": "greeting", "prompt_variables": {"name": name}},
        allowed,
        "PROMPT_MIDDLEWARE_MAX_VARIABLES_DEPTH",
    )


@pytest.mark.parametrize(
    ("body", "allowed"),
    [
        ({"prompt_id": "greeting", "prompt_variables": {"name": "x" * 44}}, True),  # 6 + 44
        ({"prompt_id": "greeting", "prompt_variables": {"name": "x" * 45}}, False),
        ({"prompt_id": "echo", "prompt_variables": {"x": "x" * 5}}, True),  # 10 x 5
        ({"prompt_id": "echo", "prompt_variables": {"x": "x" * 6}}, False),
        (
            {
                "prompt_id": "shots",
                "prompt_variables": {"examples": [{"role": "user", "content": "x" * 49}]},
            },
            True,  # "S" + 49
        ),
        (
            {
                "prompt_id": "shots",
                "prompt_variables": {"examples": [{"role": "user", "content": "x" * 50}]},
            },
            False,
        ),
    ],
)
async def test_rendered_prompt_size_limit(
    limits_client: LimitsClient, body: dict[str, Any], allowed: bool
) -> None:
    await check_limit(
        limits_client(max_rendered_chars=50), body, allowed, "PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS"
    )


async def test_a_variable_repeated_cannot_multiply_the_default_limit(
    limits_client: LimitsClient,
) -> None:
    # 10 copies of 1 MiB - 20 bytes: within every input limit, ten times what may be rendered.
    value = "x" * (1024 * 1024 - 20)
    await check_limit(
        limits_client(),
        {"prompt_id": "echo", "prompt_variables": {"x": value}},
        False,
        "PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS",
    )


async def test_json_nesting_depth_is_bounded(limits_client: LimitsClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for body in (
        b'{"model": "gpt-4o", "metadata": ' + deep + b"}",
        b'{"prompt_id": "greeting", "prompt_variables": {"name": ' + deep + b"}}",
    ):
        response = await limits_client().post(URL, content=body)
        assert response.status_code == 400
        assert "nested too deeply" in error_of(response)["message"]


async def check_limit(
    client: httpx.AsyncClient, body: dict[str, Any], allowed: bool, setting: str
) -> None:
    response = await client.post(URL, json={"model": "m", **body})
    assert_limit(response, allowed, setting)


def assert_limit(response: httpx.Response, allowed: bool, setting: str) -> None:
    if allowed:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] in {"invalid_request", "invalid_prompt_request"}
    assert error["param"] == "prompt_variables"
    assert setting in error["message"]
