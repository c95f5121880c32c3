"""Helpers shared by the engine tests: a fake clock, stores, an observer, request shortcuts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2

from prompt_middleware.engine import RewriteEngine, RewriteResult
from prompt_middleware.observe import ExperimentAnswer, FetchOutcome
from prompt_middleware.prompts import Prompt, PromptQuery
from tests.conftest import RecordingApp
from tests.fakes.memory import text_prompt

URL = "/v1/chat/completions"
SYSTEM = b'{"role":"system","content":"Be brief."}'


class RecordingObserver:
    """An :class:`~prompt_middleware.observe.Observer` that keeps every call."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, int, str | None, float]] = []
        self.fetches: list[tuple[str, FetchOutcome, float]] = []
        self.experiments: list[tuple[str, str, bool]] = []  # (experiment, variant, fallback)
        self.answers: list[ExperimentAnswer] = []

    def request(self, route: str, status: int, cache: str | None, overhead_seconds: float) -> None:
        self.requests.append((route, status, cache, overhead_seconds))

    def store_fetch(self, store: str, outcome: FetchOutcome, seconds: float) -> None:
        self.fetches.append((store, outcome, seconds))

    def experiment_request(self, experiment: str, variant: str) -> None:
        self.experiments.append((experiment, variant, False))

    def experiment_fallback(self, experiment: str, variant: str) -> None:
        self.experiments.append((experiment, variant, True))

    def experiment_answer(self, answer: ExperimentAnswer) -> None:
        self.answers.append(answer)


class EveryNameStore:
    """Has a prompt under every name, whose text is its name: for floods of distinct names."""

    def __init__(self) -> None:
        self.total_calls = 0

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        self.total_calls += 1
        return text_prompt(query.name, query.name)

    async def aclose(self) -> None:
        pass


EngineFactory = Callable[..., RewriteEngine]


def post(client: httpx2.AsyncClient, body: bytes) -> Any:
    return client.post(URL, content=body, headers={"content-type": "application/json"})


async def managed(engine: RewriteEngine, body: Any) -> RewriteResult:
    result = await engine.rewrite(json.dumps(body).encode())
    assert result is not None
    return result


def header(result: RewriteResult, name: bytes) -> bytes:
    return dict(result.headers)[name]


def sent_messages(app: RecordingApp) -> Any:
    # The standard library's decoder: proof that the copied bytes are valid JSON on their own.
    return json.loads(app.last.body)["messages"]


def error_body(message: str, param: str, code: str) -> bytes:
    return json.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }
        },
        separators=(",", ":"),
    ).encode()
