"""stores/_http.py: what every remote store shares (README "Prompt stores"), tested once.

The base-URL checks, the one deadline over every attempt, the retry on 429, 5xx and connect
errors only, redirects refused, and the translation of statuses and httpx2 errors. Each store's
own wording (its name, the setting to check) is in ``ServiceText``; the contract test
(``test_contract.py``) checks that every store routes its requests through this.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import msgspec
import pytest
import respx
from structlog.testing import capture_logs

from prompt_middleware.errors import ConfigurationError, PromptNotFound, PromptStoreUnavailable
from prompt_middleware.stores._http import (
    HttpService,
    ServiceText,
    error_detail,
    is_json_object,
    path_segment,
)

BASE_URL = "http://service.test/api"
URL = f"{BASE_URL}/prompts/x"
WHAT = "prompt 'x'"
TEXT = ServiceText(
    name="Service",
    base_url="The Service base URL",
    example="https://service.example",
    credentials="set SERVICE_KEY instead",
    check_base_url="check SERVICE_BASE_URL",
    refused="the key",
    check_credentials="check SERVICE_KEY",
    log_event="service.fetch",
)


def make_service(client: httpx2.AsyncClient | None, **options: Any) -> HttpService:
    settings: dict[str, Any] = {
        "base_url": BASE_URL,
        "timeout": 5.0,
        "retries": 1,
        "retry_backoff": 0.0,
        "client": client,
    }
    settings.update(options)
    return HttpService(TEXT, **settings)


async def fetch(service: HttpService, url: str = URL) -> httpx2.Response:
    request = service.client().build_request("GET", url)
    return await service.send(request, WHAT, prompt="x")


async def fetch_ok(service: HttpService) -> httpx2.Response:
    """A fetch as a store does it: a non-200 becomes the error it means."""
    response = await fetch(service)
    if response.status_code != 200:
        service.raise_for_status(response, WHAT, not_found="no prompt 'x'")
    return response


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


# --- retries and the deadline ------------------------------------------------------------


@pytest.mark.parametrize(("retries", "requests"), [(0, 1), (1, 2), (3, 4)])
@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_retries_are_bounded(
    mock: respx.MockRouter, client: httpx2.AsyncClient, retries: int, requests: int, status: int
) -> None:
    route = mock.get(URL).respond(status, json={"message": "down"})

    with pytest.raises(PromptStoreUnavailable, match=str(status)):
        await fetch_ok(make_service(client, retries=retries))

    assert route.call_count == requests


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_answers_are_not_retried(
    mock: respx.MockRouter, client: httpx2.AsyncClient, status: int
) -> None:
    route = mock.get(URL).respond(status, json={"message": "no"})

    with pytest.raises((PromptStoreUnavailable, PromptNotFound)):
        await fetch_ok(make_service(client, retries=3))

    assert route.call_count == 1


async def test_a_retry_recovers(mock: respx.MockRouter, client: httpx2.AsyncClient) -> None:
    route = mock.get(URL)
    route.side_effect = [httpx.Response(503), httpx.Response(200, json={"ok": True})]

    response = await fetch_ok(make_service(client))

    assert response.json() == {"ok": True}
    assert route.call_count == 2


async def test_the_deadline_covers_every_attempt() -> None:
    calls: list[httpx2.Request] = []
    abandoned: list[httpx2.Request] = []
    never = asyncio.Event()

    async def hold(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        try:
            await never.wait()
        except asyncio.CancelledError:
            abandoned.append(request)
            raise
        raise AssertionError("unreachable")

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(hold)) as client:
        with pytest.raises(PromptStoreUnavailable) as caught:
            await fetch(make_service(client, timeout=0.05, retries=3))

    assert caught.value.message == (
        "Service at service.test did not answer in time (0.05s) while fetching prompt 'x'"
    )
    assert len(calls) == 1  # no retry was started after the deadline
    assert abandoned == calls  # the request was abandoned, not left waiting


async def test_connect_errors_are_retried_then_reported() -> None:
    calls: list[httpx2.Request] = []

    def refuse(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        raise httpx2.ConnectError("Connection refused", request=request)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(refuse)) as client:
        with pytest.raises(PromptStoreUnavailable) as caught:
            await fetch(make_service(client, retries=2))

    assert caught.value.message.startswith("Service at service.test could not be reached")
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)
    assert len(calls) == 3


async def test_read_errors_are_not_retried() -> None:
    calls: list[httpx2.Request] = []

    def drop(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        raise httpx2.ReadError("connection reset", request=request)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(drop)) as client:
        with pytest.raises(PromptStoreUnavailable, match="ReadError"):
            await fetch(make_service(client, retries=2))

    assert len(calls) == 1


async def test_nothing_listens_on_the_port() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    service = make_service(None, base_url=f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(PromptStoreUnavailable, match=f"127.0.0.1:{port} could not be reached"):
            await fetch(service, f"http://127.0.0.1:{port}/x")
    finally:
        await service.aclose()


# --- statuses ------------------------------------------------------------------------------


async def test_redirects_are_not_followed(
    mock: respx.MockRouter, client: httpx2.AsyncClient
) -> None:
    route = mock.get(URL).respond(302, headers={"location": "http://evil.test/x"})

    with pytest.raises(PromptStoreUnavailable) as caught:
        await fetch_ok(make_service(client))

    assert caught.value.message == (
        "Service at service.test answered with a redirect (HTTP 302) for prompt 'x'; redirects "
        "are not followed: check SERVICE_BASE_URL"
    )
    assert route.call_count == 1  # and assert_all_mocked: nothing went to evil.test


async def test_a_json_404_is_a_missing_prompt(
    mock: respx.MockRouter, client: httpx2.AsyncClient
) -> None:
    mock.get(URL).respond(404, json={"message": "not found"})

    with pytest.raises(PromptNotFound) as caught:
        await fetch_ok(make_service(client))

    assert (caught.value.message, caught.value.param) == ("no prompt 'x'", "prompt_id")


async def test_a_404_without_json_is_not_a_missing_prompt(
    mock: respx.MockRouter, client: httpx2.AsyncClient
) -> None:
    # An HTML 404 comes from a proxy or a wrong base URL: "not found" would make the cache
    # evict every prompt it holds.
    mock.get(URL).respond(404, html="<html>404: This page could not be found.</html>")

    with pytest.raises(PromptStoreUnavailable, match="check SERVICE_BASE_URL"):
        await fetch_ok(make_service(client))


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials(
    mock: respx.MockRouter, client: httpx2.AsyncClient, status: int
) -> None:
    mock.get(URL).respond(status, json={"message": "key sk-echoed-back is wrong"})

    with pytest.raises(PromptStoreUnavailable) as caught:
        await fetch_ok(make_service(client))

    assert caught.value.message == (
        f"Service at service.test refused the key (HTTP {status}) while fetching prompt 'x': "
        "check SERVICE_KEY"
    )
    assert caught.value.status_code == 502


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (
            {"detail": [{"type": "missing", "loc": ["query", "slug"], "msg": "Field required"}]},
            ": query.slug: Field required",
        ),
        ({"detail": "slug is required"}, ": slug is required"),
        ({"detail": {"msg": "bad slug"}}, ": bad slug"),
        ({"message": "Cannot specify both version and label"}, ": Cannot specify both version"),
        ({"detail": None}, ""),
    ],
)
@pytest.mark.parametrize("status", [400, 422])
async def test_a_rejected_request_shows_the_services_message(
    mock: respx.MockRouter, client: httpx2.AsyncClient, status: int, body: Any, shown: str
) -> None:
    route = mock.get(URL).respond(status, json=body)

    with pytest.raises(PromptStoreUnavailable) as caught:
        await fetch_ok(make_service(client))

    assert caught.value.message.startswith(
        f"Service at service.test rejected the request for prompt 'x' (HTTP {status}){shown}"
    )
    assert route.call_count == 1


def test_error_detail_is_shortened_and_ignores_what_is_not_json() -> None:
    assert error_detail(b'{"detail": "' + b"x" * 1000 + b'"}') == "x" * 300
    assert error_detail(b"<html>") is None
    assert error_detail(b'{"detail": 3}') is None


@pytest.mark.parametrize(("body", "expected"), [(b"{}", True), (b"[]", False), (b"<h1>", False)])
def test_is_json_object(body: bytes, expected: bool) -> None:
    assert is_json_object(body) is expected


def test_an_invalid_body_names_the_service_and_the_prompt() -> None:
    service = make_service(None)

    not_json = service.invalid("'x'", msgspec.DecodeError("truncated"))
    assert not_json.message == (
        "Service returned an invalid prompt for 'x': the body is not JSON (truncated)"
    )


async def test_fetches_are_logged(mock: respx.MockRouter, client: httpx2.AsyncClient) -> None:
    mock.get(URL).respond(200, json={})

    with capture_logs() as logs:
        await fetch(make_service(client))

    (entry,) = [e for e in logs if e["event"] == "service.fetch"]
    assert entry["log_level"] == "debug"
    assert (entry["prompt"], entry["status"], entry["attempt"]) == ("x", 200, 1)
    assert isinstance(entry["duration_ms"], float)


# --- the base URL and the limits -------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["ftp://service.test", "service.test", "http://", "http://h/?a=b", "http://h/#f"]
)
def test_bad_base_url(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="The Service base URL must"):
        make_service(None, base_url=base_url)


def test_base_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_service(None, base_url="https://user:hunter2@service.test")
    assert "hunter2" not in str(caught.value)
    assert "set SERVICE_KEY instead" in str(caught.value)


@pytest.mark.parametrize(
    "options", [{"timeout": 0}, {"timeout": -1}, {"retries": -1}, {"retry_backoff": -0.1}]
)
def test_bad_limits(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="Service store: timeout must be > 0"):
        make_service(None, **options)


def test_the_base_keeps_its_path_without_a_trailing_slash() -> None:
    service = make_service(None, base_url="https://service.test:8443/api/v2/")
    assert (service.base, service.host) == ("https://service.test:8443/api/v2", "service.test:8443")


@pytest.mark.parametrize(
    ("name", "segment"),
    [("a/b", "a%2Fb"), ("a?b#c", "a%3Fb%23c"), (".", "%2E"), ("..", "%2E%2E"), ("x.y", "x.y")],
)
def test_path_segment(name: str, segment: str) -> None:
    assert path_segment(name) == segment


# --- the client --------------------------------------------------------------------------


async def test_own_client_is_created_on_first_use_and_closed(mock: respx.MockRouter) -> None:
    mock.get(URL).respond(200, json={})
    service = make_service(None)

    await fetch(service)
    client = service.client()
    await service.aclose()

    assert client.is_closed
    with pytest.raises(PromptStoreUnavailable, match="The Service prompt store has been closed"):
        service.client()


async def test_an_injected_client_is_left_to_its_owner(client: httpx2.AsyncClient) -> None:
    service = make_service(client)

    await service.aclose()

    assert not client.is_closed
