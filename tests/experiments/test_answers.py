"""An experiment's answers, read as they pass (README, "Dashboard"): what the observer is told
at the end of each, one answer reader shared with the span, and none when nothing needs it."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from prompt_middleware import PromptMiddleware, Settings
from prompt_middleware import answer_watch as answer_watch_module
from prompt_middleware.experiments import Experiment, Variant
from prompt_middleware.handoff import HandOff
from prompt_middleware.tracing.answer import StreamAnswerReader, reader_for
from tests.engine.helpers import RecordingObserver
from tests.fakes.memory import MemoryStore, text_prompt
from tests.tracing.conftest import MemoryTracing
from tests.tracing.test_answer import COMPLETION, STREAM, _chunk

URL = "/v1/chat/completions"
EXPERIMENT = Experiment(
    name="tone",
    prompt_id="greeting",
    variants=(Variant(label="production", weight=1), Variant(label="candidate", weight=0)),
)
STORE = MemoryStore(
    text_prompt("greeting", "Hello", version=1, labels=("production",)),
    text_prompt("greeting", "Hi", version=2, labels=("candidate",)),
)


def _answering(status: int, content_type: bytes, chunks: list[bytes]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


def _middleware(app: Any, observer: RecordingObserver, **kwargs: Any) -> PromptMiddleware:
    settings = Settings(default_store="mem", experiments=(EXPERIMENT,))
    return PromptMiddleware(app, settings, stores={"mem": STORE}, observer=observer, **kwargs)


async def _post(app: Any, **extra: Any) -> httpx.Response:
    body = {"model": "mem/gpt-4o", "prompt_id": "greeting", "messages": [], **extra}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app"
    ) as client:
        return await client.post(URL, json=body)


def test_the_stream_reader_notes_when_the_first_text_went_out() -> None:
    reader = StreamAnswerReader(content=False)
    role = {"index": 0, "delta": {"role": "assistant", "content": ""}}
    role_only = b"data: " + json.dumps({"id": "c", "model": "m", "choices": [role]}).encode()
    reader.feed(role_only + b"\n\n")
    assert reader.first_text_at is None
    before = time.perf_counter()
    reader.feed(_chunk("Bon"))
    after = time.perf_counter()
    assert reader.first_text_at is not None
    assert before <= reader.first_text_at <= after
    first = reader.first_text_at
    reader.feed(_chunk("jour"))
    assert reader.first_text_at == first


async def test_a_streamed_answer_is_reported_with_its_usage_and_first_token() -> None:
    observer = RecordingObserver()
    chunks = [STREAM[:40], STREAM[40:]]
    started = time.perf_counter()
    response = await _post(_middleware(_answering(200, b"text/event-stream", chunks), observer))
    assert response.headers["x-prompt-variant"] == "production"
    (answer,) = observer.answers
    assert (answer.experiment, answer.variant, answer.status) == ("tone", "production", 200)
    assert (answer.input_tokens, answer.output_tokens) == (20, 2)
    assert answer.upstream_seconds is None  # an app, not the forwarder
    assert answer.first_token_seconds is not None
    assert 0 < answer.first_token_seconds <= answer.duration_seconds
    assert answer.duration_seconds <= time.perf_counter() - started


async def test_a_json_answer_has_no_first_token_and_an_error_no_usage() -> None:
    observer = RecordingObserver()
    ok = _answering(200, b"application/json", [json.dumps(COMPLETION).encode()])
    await _post(_middleware(ok, observer))
    failing = _answering(503, b"application/json", [b'{"error":{"usage":{"prompt_tokens":1}}}'])
    await _post(_middleware(failing, observer))
    first, second = observer.answers
    assert (first.status, first.first_token_seconds) == (200, None)
    assert (first.input_tokens, first.output_tokens) == (12, 3)  # COMPLETION's usage
    assert (second.status, second.input_tokens, second.output_tokens) == (503, None, None)


async def test_a_request_naming_its_label_or_unmanaged_is_not_reported() -> None:
    observer = RecordingObserver()
    app = _answering(200, b"application/json", [json.dumps(COMPLETION).encode()])
    await _post(_middleware(app, observer), prompt_label="candidate")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_middleware(app, observer)), base_url="http://app"
    ) as client:
        await client.post(URL, json={"model": "gpt-4o", "messages": []})
    assert observer.answers == []


async def test_one_reader_feeds_both_the_span_and_the_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[object] = []
    real = reader_for

    def counting(*args: Any, **kwargs: Any) -> Any:
        reader = real(*args, **kwargs)
        made.append(reader)
        return reader

    monkeypatch.setattr(answer_watch_module, "reader_for", counting)
    memory = MemoryTracing()
    observer = RecordingObserver()
    app = _answering(200, b"text/event-stream", [STREAM])
    try:
        await _post(_middleware(app, observer, tracing=memory.tracing))
        span = memory.only_span()
    finally:
        await memory.tracing.aclose()
    assert len(made) == 1
    assert span.attributes is not None
    assert span.attributes["gen_ai.usage.input_tokens"] == 20
    assert observer.answers[0].input_tokens == 20


class _Forwarder:
    """A forwarder that keeps each hand-off and answers 200 at once."""

    def __init__(self) -> None:
        self.handoffs: list[HandOff] = []

    def forward_body(
        self, scope: Scope, handoff: HandOff, receive: Receive, send: Send
    ) -> Awaitable[int]:
        self.handoffs.append(handoff)

        async def answer() -> int:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            return 200

        return answer()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the middleware hands requests over in one call")


@pytest.mark.parametrize(
    ("extra", "watched"),
    [({}, True), ({"prompt_label": "production"}, False)],
)
async def test_the_answer_is_watched_only_when_something_needs_it(
    extra: dict[str, Any], watched: bool
) -> None:
    forwarder = _Forwarder()
    await _post(_middleware(forwarder, RecordingObserver()), **extra)
    (handoff,) = forwarder.handoffs
    assert (handoff.watch is not None) is watched
    # Without an observer nothing measures the experiment, and without traces no span.
    unobserved = PromptMiddleware(
        forwarder, Settings(default_store="mem", experiments=(EXPERIMENT,)), stores={"mem": STORE}
    )
    await _post(unobserved, **extra)
    assert forwarder.handoffs[-1].watch is None


def test_a_long_stream_is_read_only_where_it_says_something_wanted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without content, once the model and the first text are known, a chunk of whole events
    with no usage object is not decoded; the usage chunk still is."""
    read: list[bytes] = []
    decoded = StreamAnswerReader._read_event

    def counting(self: StreamAnswerReader, event: bytes) -> None:
        decoded(self, event)
        read.append(event)  # read: it was one event, and decoded

    monkeypatch.setattr(StreamAnswerReader, "_read_event", counting)
    reader = StreamAnswerReader(content=False)
    role = {"index": 0, "delta": {"role": "assistant", "content": ""}}
    head = {"id": "c", "model": "m", "usage": None}
    reader.feed(b"data: " + json.dumps({**head, "choices": [role]}).encode() + b"\n\n")
    for word in ["Bon", "jour", " à", " vous"] * 10:
        reader.feed(_chunk(word))  # each with "usage": null, as with include_usage
    usage = {"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60}
    reader.feed(_chunk(None, usage=usage) + b"data: [DONE]\n\n")
    answer = reader.finish()
    assert len(read) == 3  # the model's, the first text's, the usage's
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (20, 40)
    assert reader.first_text_at is not None
