"""CPU per request of the middleware's ASGI call, in process, against baselines of the same run.

    .venv/bin/python bench/hot_path.py            # full: 7 rounds
    .venv/bin/python bench/hot_path.py --smoke    # CI: a quick pass so the script never rots

Cases: an unmatched route, a matched unmanaged request, a managed request on a cache hit; each
with a realistic 2 KB body (system + few-shot messages, tools, metadata) and a 200 KB body.
A cache hit on ``/v1/responses`` and ``/v1/messages`` against one on chat completions.
A cache hit on a ``.prompt`` body with Jinja logic, against the same prompt without logic.
Baselines measured in the same run: the same no-op app unwrapped, and a naive
``json.loads``/``json.dumps`` rewrite of the same requests. The same for ``PromptTransport``
against the bare httpx2 transport it wraps, and for the sidecar app against the bare proxy of
``bench/sidecar_load.py``, both in front of an instant stub upstream. With traces on
(README, "Traces"): a managed hit answered with a JSON completion and with a stream, spans
exported to nowhere (encoded as OTLP/JSON in batches, then dropped), and a request the sampler
leaves out, against the same with traces off. Cases and their baselines take turns within
each round, so a burst of noise does not land on one of them only. Medians of several rounds;
ratios, not lone times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from typing import Any

import httpx
import httpx2
import structlog
from _common import aiohttp_proxy, upstream_app

from prompt_middleware import (
    ChatMessage,
    HttpxPromptTransport,
    Placeholder,
    Prompt,
    PromptMiddleware,
    PromptQuery,
    PromptTransport,
    Settings,
    report,
)
from prompt_middleware.experiments import Experiment, Variant
from prompt_middleware.render import compile_template
from prompt_middleware.sidecar import Sidecar
from prompt_middleware.sidecar.forwarder import Forwarder
from prompt_middleware.sidecar.metrics import PrometheusMetrics
from prompt_middleware.tracing import Sampler, SpanRecord, Tracing
from prompt_middleware.tracing.otlp_json import JsonEncoder
from prompt_middleware.tracing.setup import INSTRUMENTATION_NAME, resource_of

URL = "/v1/chat/completions"
PROMPT = Prompt(
    name="support/answer",
    version=3,
    type="chat",
    prompt=(
        ChatMessage("system", "You support {{product}}. Answer in {{language}}."),
        Placeholder("messages"),
    ),
    config={"model": "gpt-4o", "temperature": 0.2, "max_tokens": 300},
    labels=("production",),
)


class OneStore:
    async def get_prompt(self, query: PromptQuery) -> Prompt:
        return PROMPT

    async def aclose(self) -> None:
        pass


def body_of(
    size: int, *, managed: bool, store: str = "mem", prompt_id: str = "support/answer"
) -> bytes:
    """A chat request of about ``size`` bytes: system + few-shot messages, tools, metadata;
    a managed one names ``prompt_id`` (``support/answer``) in ``store``."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are helpful."}]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Find an order by id.",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            },
        }
    ]
    request: dict[str, Any] = {
        "model": f"{store}/gpt-4o-mini" if managed else "gpt-4o-mini",
        "messages": messages,
        "tools": tools,
        "metadata": {"tenant": "acme", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
        "temperature": 0.7,
        "seed": 12345678901234567890,
    }
    if managed:
        request["prompt_id"] = prompt_id
        request["prompt_variables"] = {"product": "Acme Cloud", "language": "English"}
    turn = 0
    while len(json.dumps(request)) < size:
        role = "user" if turn % 2 == 0 else "assistant"
        messages.append({"role": role, "content": f"Example message {turn}: " + "lorem ipsum " * 8})
        turn += 1
    return json.dumps(request).encode()


async def noop_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def asgi_call(app: Any, path: str, body: bytes) -> Callable[[], Awaitable[None]]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def send(_: Any) -> None:
        return None

    async def call() -> None:
        await app(scope, receive, send)

    return call


def naive_rewrite(body: bytes) -> bytes:
    """What a straightforward proxy does: parse everything, edit, serialise everything."""
    request = json.loads(body)
    if "prompt_id" not in request:
        return body
    variables = request.pop("prompt_variables", {})
    request.pop("prompt_id")
    system = PROMPT.prompt[0]
    assert isinstance(system, ChatMessage)
    request["messages"] = [
        {"role": "system", "content": compile_template(system.content, variables)},
        *request["messages"],
    ]
    request["model"] = "gpt-4o"
    request["temperature"] = 0.2
    request["max_tokens"] = 300
    return json.dumps(request).encode()


async def cpu_per_call(
    calls: dict[str, Callable[[], Awaitable[None]]], iterations: int, rounds: int
) -> dict[str, float]:
    """Median over rounds of process CPU seconds per call, for each call.

    The calls take turns within each round (their order rotating), so a burst of noise on
    the machine lands on one round of several calls, not on every round of one of them.
    """
    for call in calls.values():
        for _ in range(max(10, iterations // 10)):
            await call()
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            call = calls[name]
            started = time.process_time()
            for _ in range(iterations):
                await call()
            samples[name].append((time.process_time() - started) / iterations)
    return {name: statistics.median(values) for name, values in samples.items()}


def us(seconds: float) -> str:
    return f"{seconds * 1e6:9.1f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a quick pass for CI")
    arguments = parser.parse_args()
    rounds, scale = (1, 0.02) if arguments.smoke else (7, 1.0)
    # Logging filtered at warning, as most production services run: the canonical info line
    # then costs one method call. (The line's cost when enabled is measured below.)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )

    settings = Settings(default_store="mem")
    wrapped = PromptMiddleware(noop_app, settings, stores={"mem": OneStore()})
    print(f"{'case':44} {'body':>6} {'µs/req':>9} {'baseline':>9} {'added':>9}")
    for size, label, iterations in ((2_000, "2 KB", 20_000), (200_000, "200 KB", 400)):
        n = max(20, int(iterations * scale))
        unmanaged, managed = body_of(size, managed=False), body_of(size, managed=True)
        await asgi_call(wrapped, URL, managed)()  # warm the cache: the managed case is a hit
        cases = {
            "unmatched route (wrapped)": asgi_call(wrapped, "/v1/embeddings", unmanaged),
            "matched, unmanaged (wrapped)": asgi_call(wrapped, URL, unmanaged),
            "managed, cache hit (wrapped)": asgi_call(wrapped, URL, managed),
        }

        async def ours(body: bytes = managed, engine: Any = wrapped.engine) -> None:
            await engine.rewrite(body)

        async def naive(body: bytes = managed) -> None:
            naive_rewrite(body)

        costs = await cpu_per_call(
            {"bare": asgi_call(noop_app, URL, unmanaged), **cases, "ours": ours, "naive": naive},
            n,
            rounds,
        )
        bare = costs["bare"]
        for name in cases:
            cost = costs[name]
            print(f"{name:44} {label:>6} {us(cost)} {us(bare)} {us(cost - bare)}")
        ours_cost, naive_cost = costs["ours"], costs["naive"]
        print(
            f"{'rewrite only: msgspec engine vs naive json':44} {label:>6} {us(ours_cost)} "
            f"{us(naive_cost)}   {naive_cost / ours_cost:5.1f}x faster"
        )

    await apis_case(settings, rounds, scale)
    await jinja_case(settings, rounds, scale)
    await sidecar_case(rounds, scale)
    await experiment_case(rounds, scale)
    await traces_case(rounds, scale)
    await transport_case(settings, rounds, scale)
    await logging_case(settings, rounds, scale)


def api_body_of(api: str, size: int) -> bytes:
    """``body_of``'s managed 2 KB chat request as the Responses or Messages API writes it:
    the system text in its slot, the turns in its conversation, tools in its shape."""
    chat = json.loads(body_of(size, managed=True))
    messages = chat.pop("messages")
    system = messages.pop(0)["content"]
    function = chat.pop("tools")[0]["function"]
    if api == "responses":
        tool = {"type": "function", **function, "strict": False}
        request = {**chat, "instructions": system, "input": messages, "tools": [tool]}
    else:
        tool = {
            "name": function["name"],
            "description": function["description"],
            "input_schema": function["parameters"],
        }
        del chat["seed"]
        request = {
            **chat,
            "system": system,
            "messages": messages,
            "tools": [tool],
            "max_tokens": 1024,
            "metadata": {"user_id": "user-7"},
        }
    return json.dumps(request).encode()


async def apis_case(settings: Settings, rounds: int, scale: float) -> None:
    # A managed cache hit on each API's route, the same prompt and the same conversation,
    # against chat completions' (README, "Three APIs": within 10 %).
    wrapped = PromptMiddleware(noop_app, settings, stores={"mem": OneStore()})
    calls = {
        "chat": asgi_call(wrapped, URL, body_of(2_000, managed=True)),
        "responses": asgi_call(wrapped, "/v1/responses", api_body_of("responses", 2_000)),
        "messages": asgi_call(wrapped, "/v1/messages", api_body_of("messages", 2_000)),
    }
    for call in calls.values():
        await call()  # warm the cache: every case is a hit
    n = max(20, int(20_000 * scale))
    costs = await cpu_per_call({"bare": asgi_call(noop_app, URL, b"{}"), **calls}, n, rounds)
    bare, chat = costs["bare"], costs["chat"]
    for name in ("responses", "messages"):
        cost = costs[name]
        print(
            f"{'managed, cache hit, /v1/' + name:44} {'2 KB':>6} {us(cost)} {us(chat)} "
            f"{us(cost - chat)}   ({(cost - bare) / (chat - bare):4.2f}x chat's added cost)"
        )


# The same system message from a .prompt body with Jinja logic and from one without.
PLAIN_BODY = "System: You support {{product}}. Answer in {{language}}."
LOGIC_BODY = (
    "System: You support {{ product }}.{% if language %} Answer in {{ language }}.{% endif %}"
)
DOTPROMPTS = {
    "support/plain": Prompt(
        name="support/plain",
        version=1,
        type="chat",
        prompt=(ChatMessage("system", PLAIN_BODY.removeprefix("System: ")),),
        template_language="jinja",
    ),
    "support/logic": Prompt(
        name="support/logic",
        version=1,
        type="chat",
        prompt=LOGIC_BODY,
        template_language="dotprompt",
    ),
}


class DotpromptStore:
    async def get_prompt(self, query: PromptQuery) -> Prompt:
        return DOTPROMPTS[query.name]

    async def aclose(self) -> None:
        pass


async def jinja_case(settings: Settings, rounds: int, scale: float) -> None:
    # A cache hit on a .prompt file with Jinja logic against the same prompt without logic.
    wrapped = PromptMiddleware(noop_app, settings, stores={"mem": DotpromptStore()})
    plain, logic = (body_of(2_000, managed=True, prompt_id=name) for name in DOTPROMPTS)
    for body in (plain, logic):
        await asgi_call(wrapped, URL, body)()
    n = max(20, int(20_000 * scale))
    costs = await cpu_per_call(
        {"plain": asgi_call(wrapped, URL, plain), "jinja": asgi_call(wrapped, URL, logic)},
        n,
        rounds,
    )
    plain_cost, jinja_cost = costs["plain"], costs["jinja"]
    print(
        f"{'managed, cache hit, .prompt with Jinja logic':44} {'2 KB':>6} {us(jinja_cost)} "
        f"{us(plain_cost)} {us(jinja_cost - plain_cost)}   (baseline: the same without logic)"
    )


UPSTREAM_ANSWER = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}'


class StubContent:
    """An upstream answer's body, as aiohttp's ``StreamReader`` hands it over: one chunk."""

    def __init__(self) -> None:
        self._done = False

    async def readany(self) -> bytes:
        chunk, self._done = (b"" if self._done else UPSTREAM_ANSWER), True
        return chunk

    def at_eof(self) -> bool:
        return self._done

    async def iter_any(self) -> AsyncIterator[bytes]:
        while chunk := await self.readany():
            yield chunk


class StubResponse:
    status = 200
    raw_headers = (
        (b"Content-Type", b"application/json"),
        (b"Content-Length", str(len(UPSTREAM_ANSWER)).encode()),
        (b"Date", b"Thu, 26 Nov 2026 10:00:00 GMT"),
    )

    def __init__(self) -> None:
        self.content = StubContent()

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


class StubRequest:
    """What ``ClientSession.request`` returns: awaited (the forwarder) or entered (the floor)."""

    def __await__(self) -> Generator[Any, None, StubResponse]:
        return self._response().__await__()

    async def _response(self) -> StubResponse:
        return StubResponse()

    async def __aenter__(self) -> StubResponse:
        return StubResponse()

    async def __aexit__(self, *_: object) -> None:
        pass


class StubSession:
    """An aiohttp session whose upstream answers at once, without a socket: what is left
    is the proxy's own work."""

    def request(self, method: str, url: object, **_: object) -> StubRequest:
        return StubRequest()

    async def close(self) -> None:
        pass


def proxy_call(app: Any, body: bytes) -> Callable[[], Awaitable[None]]:
    """An ASGI request as a server makes it: the body once, then nothing until the client
    leaves (which it does not)."""
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": URL, "headers": headers}
    scope |= {"root_path": "", "query_string": b"", "http_version": "1.1", "scheme": "http"}
    message = {"type": "http.request", "body": body, "more_body": False}
    never = asyncio.Event()

    async def send(_: Any) -> None:
        return None

    def call() -> Awaitable[None]:
        pending = [message]

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop()
            await never.wait()
            return {"type": "http.disconnect"}

        return app(scope, receive, send)  # type: ignore[no-any-return]

    return call


async def sidecar_case(rounds: int, scale: float) -> None:
    """The sidecar app (keys off, metrics on, the forwarder) against the floor's bare
    pass-through, both in front of the same instant stub upstream: the sidecar's own CPU
    per request beyond a bare proxy, without the sockets, uvicorn and aiohttp that make the
    load test noisy."""
    settings = Settings(default_store="mem", upstream_base_url="http://upstream.test/v1")
    forwarder = Forwarder(
        settings,
        session_factory=StubSession,  # type: ignore[arg-type]
        on_upstream_response=PrometheusMetrics().upstream_response,
    )
    sidecar = Sidecar(settings, upstream=forwarder, stores={"mem": OneStore()})
    floor = aiohttp_proxy("http://upstream.test/v1", session_factory=StubSession)
    n = max(20, int(10_000 * scale))
    managed, unmanaged = body_of(2_000, managed=True), body_of(2_000, managed=False)
    await proxy_call(sidecar, managed)()  # warm the cache
    costs = await cpu_per_call(
        {
            "floor": proxy_call(floor, unmanaged),
            "managed": proxy_call(sidecar, managed),
            "unmanaged": proxy_call(sidecar, unmanaged),
        },
        n,
        rounds,
    )
    baseline = costs["floor"]
    for name in ("managed", "unmanaged"):
        cost = costs[name]
        label = f"sidecar vs bare proxy, {name} (stub)"
        print(f"{label:44} {'2 KB':>6} {us(cost)} {us(baseline)} {us(cost - baseline)}")


async def transport_case(settings: Settings, rounds: int, scale: float) -> None:
    """PromptTransport (httpx2) and HttpxPromptTransport (httpx), each over the bare mock
    transport of its own library."""

    def answer2(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b"{}")

    def answer1(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{}")

    body = body_of(2_000, managed=True)
    url = "http://upstream.test/v1/chat/completions"

    def call2(transport: httpx2.AsyncBaseTransport) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            await transport.handle_async_request(httpx2.Request("POST", url, content=body))

        return send

    def call1(transport: httpx.AsyncBaseTransport) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            await transport.handle_async_request(httpx.Request("POST", url, content=body))

        return send

    stores = {"mem": OneStore()}
    cases = {
        "PromptTransport, managed hit vs bare transport": (
            call2(httpx2.MockTransport(answer2)),
            call2(PromptTransport(httpx2.MockTransport(answer2), settings, stores=stores)),
        ),
        "HttpxPromptTransport (httpx), the same": (
            call1(httpx.MockTransport(answer1)),
            call1(HttpxPromptTransport(httpx.MockTransport(answer1), settings, stores=stores)),
        ),
    }
    n = max(20, int(10_000 * scale))
    for name, (bare, wrapped) in cases.items():
        await wrapped()
        costs = await cpu_per_call({"bare": bare, "wrapped": wrapped}, n, rounds)
        baseline, cost = costs["bare"], costs["wrapped"]
        print(f"{name:44} {'2 KB':>6} {us(cost)} {us(baseline)} {us(cost - baseline)}")


async def experiment_case(rounds: int, scale: float) -> None:
    """A managed hit with a sticky experiment on its prompt, and with one on another prompt,
    against the same request with no experiment configured (README, "Experiments")."""
    variants = (Variant(label="production", weight=90), Variant(label="candidate", weight=10))
    on_it = Experiment(name="tone", prompt_id="support/answer", variants=variants)
    elsewhere = Experiment(name="other", prompt_id="billing/answer", variants=variants)
    apps = {
        name: PromptMiddleware(
            noop_app,
            Settings(default_store="mem", experiments=experiments),
            stores={"mem": OneStore()},
        )
        for name, experiments in (("none", ()), ("on it", (on_it,)), ("elsewhere", (elsewhere,)))
    }
    request = json.loads(body_of(2_000, managed=True))
    body = json.dumps({**request, "user": "user-12345"}).encode()
    costs = await warm_cpu_per_call(apps, body, rounds, scale)
    base = costs["none"]
    for name, title in (
        ("on it", "experiment on the prompt (sticky user)"),
        ("elsewhere", "experiment on another prompt"),
    ):
        print(f"{title:44} {'2 KB':>6} {us(costs[name])} {us(base)} {us(costs[name] - base)}")
    await experiment_metrics_case(on_it, body, rounds, scale)


async def warm_cpu_per_call(
    apps: dict[str, Any], body: bytes, rounds: int, scale: float
) -> dict[str, float]:
    """CPU per call of each app for ``body``, each app's prompt cache warmed first."""
    for app in apps.values():
        await asgi_call(app, URL, body)()
    return await cpu_per_call(
        {name: asgi_call(app, URL, body) for name, app in apps.items()},
        max(20, int(20_000 * scale)),
        rounds,
    )


_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there."}}],
        "usage": {"prompt_tokens": 412, "completion_tokens": 3, "total_tokens": 415},
    }
).encode()
_STREAM = b"".join(
    b"data: " + json.dumps(event).encode() + b"\n\n"
    for event in (
        {"id": "c", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"id": "c", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {"id": "c", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "!"}}]},
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 412, "completion_tokens": 2}},
    )
)


def answering_app(content_type: bytes, answer: bytes) -> Any:
    """An app that answers at once with ``answer``: a completion, or a stream an event per
    message (as an upstream sends them)."""
    chunks: tuple[bytes, ...] = (answer,)
    if content_type == b"text/event-stream":
        chunks = tuple(event + b"\n\n" for event in answer[:-2].split(b"\n\n"))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


async def experiment_metrics_case(
    experiment: Experiment, body: bytes, rounds: int, scale: float
) -> None:
    """The sidecar's metrics observing a managed hit answered by the app at once (a JSON
    completion with usage, and a stream), with the experiment on the prompt and without; the
    same two without metrics. What the per-variant series cost (README, "Dashboard") is the
    experiment's added cost with metrics less its added cost without them: the experiment's
    own choice is not counted twice."""
    apps: dict[str, Any] = {}
    for kind, content_type, answer in (
        ("json", b"application/json", _COMPLETION),
        ("stream", b"text/event-stream", _STREAM),
    ):
        for name, experiments in (("none", ()), ("on it", (experiment,))):
            for observed in ("metrics", "bare"):
                apps[f"{kind} {name} {observed}"] = PromptMiddleware(
                    answering_app(content_type, answer),
                    Settings(default_store="mem", experiments=experiments),
                    stores={"mem": OneStore()},
                    observer=PrometheusMetrics() if observed == "metrics" else None,
                )
    costs = await warm_cpu_per_call(apps, body, rounds, scale)
    for kind, title in (("json", "JSON answer"), ("stream", "stream")):
        base, cost = costs[f"{kind} none metrics"], costs[f"{kind} on it metrics"]
        choice = costs[f"{kind} on it bare"] - costs[f"{kind} none bare"]
        title = f"metrics, experiment on it: {title}"
        print(
            f"{title:44} {'2 KB':>6} {us(cost)} {us(base)} {us(cost - base)}"
            f"   (per-variant series: {(cost - base - choice) * 1e6:4.1f})"
        )


class Nowhere:
    """Spans encoded as the OTLP exporter encodes them (JSON), then dropped: the export's
    CPU without a socket or a collector."""

    def __init__(self) -> None:
        self._encoder = JsonEncoder(resource_of({}), INSTRUMENTATION_NAME, "0")

    def export(self, spans: Sequence[SpanRecord], timeout_seconds: float) -> bool:
        self._encoder.encode(spans)
        return True

    def shutdown(self) -> None:
        pass


def flushing(
    call: Callable[[], Awaitable[None]], tracing: Tracing
) -> Callable[[], Awaitable[None]]:
    """``call``, and every 512 calls (a batch) the export of what is queued, waited for in
    this thread: the batch thread's CPU lands in this case's rounds, not in another's."""
    count = 0

    async def call_and_flush() -> None:
        nonlocal count
        await call()
        count += 1
        if count % 512 == 0:
            tracing.force_flush()

    return call_and_flush


async def traces_case(rounds: int, scale: float) -> None:
    """A managed hit with traces on against the same with traces off, the app answering as
    an upstream does (a JSON completion with usage, or an SSE stream): the span, its
    attributes, reading the answer, and the batch export's encoding."""
    settings = Settings(default_store="mem")
    tracing = Tracing(Nowhere(), environ={})
    left_out = Tracing(Nowhere(), sampler=Sampler(bound=0, parent_based=False), environ={})
    off = PromptMiddleware(upstream_app, settings, stores={"mem": OneStore()})
    on = PromptMiddleware(upstream_app, settings, stores={"mem": OneStore()}, tracing=tracing)
    unsampled = PromptMiddleware(
        upstream_app, settings, stores={"mem": OneStore()}, tracing=left_out
    )
    request = json.loads(body_of(2_000, managed=True))
    for kind, body in (
        ("JSON", json.dumps({**request, "user": "user-12345"}).encode()),
        ("stream", json.dumps({**request, "user": "user-12345", "stream": True}).encode()),
    ):
        for app in (off, on, unsampled):
            await asgi_call(app, URL, body)()  # warm the cache
        costs = await cpu_per_call(
            {
                "off": asgi_call(off, URL, body),
                "on": flushing(asgi_call(on, URL, body), tracing),
                "left out": asgi_call(unsampled, URL, body),
            },
            max(20, int(20_000 * scale)),
            rounds,
        )
        base = costs["off"]
        for name, title in (
            ("on", f"managed, cache hit, traces on ({kind} answer)"),
            ("left out", f"  the same, left out by the sampler ({kind})"),
        ):
            cost = costs[name]
            print(f"{title:44} {'2 KB':>6} {us(cost)} {us(base)} {us(cost - base)}")
    await left_out.aclose()
    if tracing.dropped_spans:
        print(f"  (traces: {tracing.dropped_spans} spans dropped: the export fell behind)")
    await tracing.aclose()


async def logging_case(settings: Settings, rounds: int, scale: float) -> None:
    # The canonical line enabled, rendered as JSON to a null sink: its full cost.
    null = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - set-up, not the measured path
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(null),
        cache_logger_on_first_use=True,
    )
    # The library's logger proxy cached the WARNING-filtered logger on first use (as it
    # should in production): give it a fresh proxy, so the new configuration applies.
    report.logger = structlog.get_logger("prompt_middleware")
    wrapped = PromptMiddleware(noop_app, settings, stores={"mem": OneStore()})
    body = body_of(2_000, managed=True)
    await asgi_call(wrapped, URL, body)()
    n = max(20, int(20_000 * scale))
    costs = await cpu_per_call(
        {"bare": asgi_call(noop_app, URL, body), "wrapped": asgi_call(wrapped, URL, body)},
        n,
        rounds,
    )
    bare, cost = costs["bare"], costs["wrapped"]
    print(
        f"{'managed, cache hit, info log line on (JSON)':44} {'2 KB':>6} {us(cost)} "
        f"{us(bare)} {us(cost - bare)}"
    )


if __name__ == "__main__":
    asyncio.run(main())
