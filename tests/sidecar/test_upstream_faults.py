"""The sidecar in front of an upstream that fails every way it can (README, "Errors", "Guarantees").

The sidecar runs on uvicorn on 127.0.0.1, in front of a :class:`RawUpstream` that misbehaves
on purpose: it refuses, never answers, stops half-way, resets, answers garbage. For each
fault the client gets the upstream's answer as sent or a clean OpenAI-shaped error, never a
hang; and afterwards nothing is left behind, counted three ways: connections still open on
the upstream's side, asyncio tasks, and file descriptors of this process (the client, the
sidecar and the upstream all live in it).

``tests/sidecar/forwarder/`` covers the forwarder's translation of each error alone; here it is the
whole sidecar, managed and streamed requests, and the counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import structlog

from prompt_middleware import Settings
from prompt_middleware.sidecar import Sidecar
from prompt_middleware.sidecar.forwarder import upstream_timeout
from tests.fakes.memory import MemoryStore, text_prompt
from tests.fakes.raw_upstream import (
    SAFETY,
    Peer,
    RawUpstream,
    Resources,
    Script,
    chunk,
    response_head,
    settle,
)
from tests.fakes.server import serve_in_background

URL = "/v1/chat/completions"
MANAGED: dict[str, Any] = {
    "model": "mem/gpt-4o",
    "prompt_id": "greeting",
    "prompt_variables": {"name": "Ada"},
}
EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
SSE = [("content-type", "text/event-stream"), ("transfer-encoding", "chunked")]


@dataclass
class Rig:
    """The sidecar (``url``) in front of ``upstream``; ``baseline`` is taken once both are up."""

    upstream: RawUpstream
    url: str
    baseline: Resources

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(base_url=self.url, timeout=SAFETY)

    async def assert_clean(self, *, pooled: int = 0) -> None:
        """Nothing left but ``pooled`` idle keep-alive connections to the upstream.

        Each pooled connection is two sockets here (both ends live in this process) and the
        upstream's task serving it; any other task, descriptor or connection is a leak.
        """
        expected = self.baseline.plus(tasks=pooled, sockets=2 * pooled)

        def clean() -> bool:
            return self.upstream.open == pooled and Resources.now() == expected

        if not await settle(clean):
            now = Resources.now()
            pytest.fail(
                f"left behind: {self.upstream.open} upstream connections (expected {pooled}), "
                f"{now} (expected {expected})"
            )


@contextlib.asynccontextmanager
async def rig(script: Script, *, base_url: str | None = None, **values: Any) -> AsyncIterator[Rig]:
    """The sidecar with a memory store (``mem/``) in front of a :class:`RawUpstream`.

    On a clean exit, checks that stopping both servers closed every socket they opened.
    """
    sockets = Resources.baseline().sockets
    store = MemoryStore(text_prompt("greeting", "Hello {{name}}"))
    async with RawUpstream(script) as upstream:
        settings = Settings(upstream_base_url=base_url or upstream.url, **values)
        sidecar = Sidecar(settings, stores={"mem": store})
        async with serve_in_background(sidecar, lifespan="on") as url:
            yield Rig(upstream, url, Resources.baseline())
    assert await settle(lambda: Resources.now().sockets == sockets), "sockets left after shutdown"


@contextlib.contextmanager
def closed_port() -> Iterator[str]:
    """A base URL on a port that is bound but not listening: every connection is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}/v1"


def assert_error(response: httpx2.Response, status: int, code: str) -> str:
    """An error of ours: JSON in OpenAI's shape (README, "Errors"); returns its message."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert list(document) == ["error"]
    error = document["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    return error["message"]


async def collect(parts: AsyncIterator[bytes], received: list[bytes]) -> None:
    async for part in parts:
        received.append(part)


# --- upstream scripts -----------------------------------------------------------------------


async def never_answer(peer: Peer) -> None:
    await peer.read_request()
    await peer.until_eof()


async def reset_before_answering(peer: Peer) -> None:
    await peer.read_request()
    peer.reset()


async def close_before_answering(peer: Peer) -> None:
    await peer.read_request()  # returning closes the connection with a FIN


async def garbage_instead_of_http(peer: Peer) -> None:
    await peer.read_request()
    await peer.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await peer.until_eof()


def first_part_then(framing: str, then: Script) -> Script:
    """Send the response head and one SSE event of a longer body, then run ``then``."""

    async def script(peer: Peer) -> None:
        await peer.read_request()
        if framing == "chunked":
            await peer.send(response_head(200, SSE) + chunk(EVENT))
        else:
            length = str(10 * len(EVENT))
            headers = [("content-type", "text/event-stream"), ("content-length", length)]
            await peer.send(response_head(200, headers) + EVENT)
        await then(peer)

    return script


def keep_answering(status: int, headers: list[tuple[str, str]], body: bytes) -> Script:
    """Answer every request on the connection with the same response, keep-alive."""
    head = response_head(status, [*headers, ("content-length", str(len(body)))])

    async def script(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.send(head + body)

    return script


# --- no answer at all -----------------------------------------------------------------------


NO_ANSWER = {
    "reset": reset_before_answering,
    "closed": close_before_answering,
    "not http": garbage_instead_of_http,
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("fault", ["refused", *NO_ANSWER])
async def test_an_upstream_that_does_not_answer_is_a_clean_502(fault: str, stream: bool) -> None:
    with closed_port() as refusing:
        base_url = refusing if fault == "refused" else None
        async with rig(NO_ANSWER.get(fault, never_answer), base_url=base_url) as r:
            async with r.client() as client:
                response = await client.post(URL, json={**MANAGED, "stream": stream})
            message = assert_error(response, 502, "upstream_unavailable")
            assert "127.0.0.1:" in message
            # The rewrite happened: the prompt headers say which prompt would have been sent.
            assert response.headers["x-prompt-name"] == "greeting"
            # Sent once, never retried: a POST to an LLM API is not idempotent.
            assert len(r.upstream.requests) == (0 if fault == "refused" else 1)
            await r.assert_clean()


@pytest.mark.parametrize("stream", [False, True])
async def test_response_headers_later_than_the_timeout_are_a_clean_504(stream: bool) -> None:
    async with rig(never_answer, upstream_timeout_seconds=0.2) as r:
        async with r.client() as client, asyncio.timeout(SAFETY):
            response = await client.post(URL, json={**MANAGED, "stream": stream})
        message = assert_error(response, 504, "upstream_timeout")
        assert "PROMPT_MIDDLEWARE_UPSTREAM_TIMEOUT_SECONDS" in message
        assert len(r.upstream.requests) == 1
        # The sidecar gave up on the upstream: its connection is closed, not pooled.
        await r.assert_clean()


# --- a response that starts, then fails -----------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
async def test_a_body_that_stalls_past_the_timeout_ends_the_clients_response(
    framing: str,
) -> None:
    received: list[bytes] = []
    with structlog.testing.capture_logs() as logs:
        async with rig(first_part_then(framing, Peer.until_eof), upstream_timeout_seconds=0.2) as r:
            async with r.client() as client, asyncio.timeout(SAFETY):
                request = client.stream("POST", URL, json={**MANAGED, "stream": True})
                async with request as response:
                    assert response.status_code == 200
                    with pytest.raises(httpx2.RemoteProtocolError):
                        await collect(response.aiter_raw(), received)
            await r.assert_clean()
    # What came before the stall reached the client; the end it never got is reported.
    assert b"".join(received) == EVENT
    (failure,) = [log for log in logs if log["event"] == "upstream_stream_failed"]
    assert "Timeout" in failure["reason"]


def test_the_read_timeout_bounds_each_wait_not_the_whole_stream() -> None:
    # README, "Configuration": the timeout is "the longest wait for the upstream's next
    # bytes". Checked on the client's configuration rather than by timing a slow stream: no
    # test may hang on the clock.
    settings = Settings(upstream_connect_timeout_seconds=2.5, upstream_timeout_seconds=42.0)
    timeout = upstream_timeout(settings)
    assert (timeout.total, timeout.sock_read, timeout.connect) == (None, 42.0, 2.5)
    bounded = upstream_timeout(Settings(upstream_total_timeout_seconds=900.0))
    assert bounded.total == 900.0


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
@pytest.mark.parametrize("ending", ["reset", "close"])
async def test_an_upstream_dying_mid_stream_ends_the_clients_stream(
    ending: str, framing: str
) -> None:
    # The upstream dies only once the client holds the first event: what was sent is relayed.
    client_has_first_part = asyncio.Event()

    async def die(peer: Peer) -> None:
        await client_has_first_part.wait()
        if ending == "reset":
            peer.reset()  # RST: SO_LINGER 0

    received: list[bytes] = []
    with structlog.testing.capture_logs() as logs:
        async with rig(first_part_then(framing, die)) as r:
            async with r.client() as client, asyncio.timeout(SAFETY):
                request = client.stream("POST", URL, json={**MANAGED, "stream": True})
                async with request as response:
                    assert response.status_code == 200
                    chunks = response.aiter_raw()
                    received.append(await anext(chunks))
                    client_has_first_part.set()
                    # The client sees a truncated transfer, never a clean end nor a hang.
                    with pytest.raises(httpx2.RemoteProtocolError):
                        await collect(chunks, received)
            await r.assert_clean()
    assert b"".join(received) == EVENT
    assert [log["event"] for log in logs].count("upstream_stream_failed") == 1


# --- answers passed back as sent ------------------------------------------------------------


# (status, headers, body, streamed request): what an upstream or a proxy in front of it
# sends when things go wrong.
PASSED_BACK = {
    "html page": (200, [("content-type", "text/html")], b"<html><body>Hi!</body></html>", False),
    "proxy 502": (
        502,
        [("content-type", "text/html"), ("x-served-by", "nginx")],
        b"<html><head><title>502 Bad Gateway</title></head></html>",
        True,
    ),
    "500 not utf-8": (500, [("content-type", "text/plain")], b"Internal error \xff\xfe", False),
    "broken json": (
        200,
        [("content-type", "application/json")],
        b'{"id": "chatcmpl-1", "cho',
        False,
    ),
    "503 json": (
        503,
        [("content-type", "application/json"), ("retry-after", "7")],
        b'{"error": {"message": "overloaded", "type": "server_error", "param": null, '
        b'"code": "overloaded"}}',
        True,
    ),
}


@pytest.mark.parametrize("case", list(PASSED_BACK))
async def test_non_json_and_5xx_answers_pass_back_as_sent(case: str) -> None:
    status, headers, body, stream = PASSED_BACK[case]
    async with rig(keep_answering(status, headers, body)) as r:
        async with r.client() as client, asyncio.timeout(SAFETY):
            responses = [
                await client.post(URL, json={**MANAGED, "stream": stream}) for _ in range(2)
            ]
        for response in responses:
            assert response.status_code == status
            assert response.content == body
            for name, value in headers:
                assert response.headers[name] == value
            assert response.headers["content-length"] == str(len(body))
            assert response.headers["x-prompt-name"] == "greeting"
        # Read to its end, the answer left its connection reusable: one connection, pooled.
        assert r.upstream.accepted == 1
        assert len(r.upstream.requests) == 2
        await r.assert_clean(pooled=1)


async def test_an_idle_connection_closed_by_the_upstream_is_not_an_error() -> None:
    # Upstreams close idle keep-alive connections: the next request must take a new one.
    async def answer_once(peer: Peer) -> None:
        await peer.read_request()
        body = b'{"object": "chat.completion"}'
        length = str(len(body))
        await peer.send(response_head(200, [("content-length", length)]) + body)

    async with rig(answer_once) as r:
        async with r.client() as client:
            assert (await client.post(URL, json=MANAGED)).status_code == 200
        # Wait until the sidecar has seen the close and dropped the connection from its pool.
        await r.assert_clean()
        async with r.client() as client:
            assert (await client.post(URL, json=MANAGED)).status_code == 200
        assert r.upstream.accepted == 2
        await r.assert_clean()
