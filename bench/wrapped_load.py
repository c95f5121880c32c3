"""Requests per second of an app wrapped by ``PromptMiddleware``, against the same app unwrapped.

The app answers a small JSON after reading the body. Two servers run side by side, each
uvicorn with one worker (uvloop, httptools) pinned to the same core, loaded in turn: the app
alone, and the app wrapped by the middleware with the in-memory store of
``bench/hot_path.py`` registered as ``stores={"mem": ...}``. Three cases, each with the 2 KB
body of ``bench/hot_path.py`` (system and few-shot messages, tools, metadata):

* an unmatched route: ``POST /v1/embeddings``, passed through untouched;
* a matched, unmanaged request: ``POST /v1/chat/completions`` without a ``prompt_id``;
* a managed request on a cache hit: ``prompt_id`` ``support/answer`` from the ``mem`` store.

Logging is configured in the served app as a production service configures structlog: JSON
lines, loggers cached on first use, filtered at ``--log-level`` (warning by default, so the
canonical ``prompt_request`` line, logged at info, is off; ``--log-level info`` measures it
on, rendered to /dev/null). 32 connections, ``--rounds`` rounds alternating which server goes
first, each round ending with both servers loaded at the same time on their shared core
(``_common.measure_together``); medians reported; the CPU columns show that the server, not
wrk, was saturated.

    .venv/bin/python bench/wrapped_load.py            # 5 rounds of 3 s per case
    .venv/bin/python bench/wrapped_load.py --smoke    # about 1 s per case, for CI
    .venv/bin/python bench/wrapped_load.py --app parse   # an app that parses its request
    .venv/bin/python bench/wrapped_load.py --app fastapi # a FastAPI endpoint, pydantic model

Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from _common import (
    PATH,
    Load,
    LoadGenerator,
    Result,
    add_load_arguments,
    clean_rounds,
    configure_logging,
    contention_note,
    describe,
    loadgen_kind,
    mark,
    measure,
    measure_together,
    median,
    probe,
    read_body,
    running,
    script_server,
    serve_app,
    split_cores,
    table,
    usage,
)
from fastapi import FastAPI, Request, Response
from hot_path import OneStore, body_of
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from prompt_middleware import PromptMiddleware, Settings

ANSWER: Final = b'{"id":"bench","ok":true}'
SERVERS: Final = ("unwrapped", "wrapped")


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    load: Load
    target: float | None  # wrapped / unwrapped requests per second, from issue 5


CASES: Final = (
    Case(
        "unmatched", "unmatched route", Load("/v1/embeddings", body_of(2_000, managed=False)), 0.98
    ),
    Case("unmanaged", "matched, unmanaged", Load(PATH, body_of(2_000, managed=False)), 0.95),
    Case("managed", "managed, cache hit", Load(PATH, body_of(2_000, managed=True)), None),
)


async def json_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The app being wrapped: reads the request, answers a small JSON."""
    if scope["type"] != "http":
        return  # no lifespan of its own: the middleware speaks it when wrapped
    await read_body(receive)
    await _answer(send)


async def parsing_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The same, but it parses the request as any chat endpoint must (``--app parse``)."""
    if scope["type"] != "http":
        return
    json.loads(await read_body(receive))
    await _answer(send)


async def _answer(send: Send) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


class ChatMessage(BaseModel, extra="allow"):
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel, extra="allow"):
    model: str
    messages: list[ChatMessage]


def fastapi_app() -> ASGIApp:
    """A chat endpoint as services write one (``--app fastapi``): FastAPI, the request
    validated into a pydantic model; the unmatched route reads its body."""
    app = FastAPI()

    @app.post(PATH)
    async def chat_completions(request: ChatRequest) -> Response:
        return Response(ANSWER, media_type="application/json")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        await request.body()
        return Response(ANSWER, media_type="application/json")

    return app


APPS: Final[dict[str, Callable[[], ASGIApp]]] = {
    "bare": lambda: json_app,
    "parse": lambda: parsing_app,
    "fastapi": fastapi_app,
}


def build_app(kind: str, app_kind: str) -> ASGIApp:
    app = APPS[app_kind]()
    if kind == "unwrapped":
        return app
    return PromptMiddleware(app, Settings(default_store="mem"), stores={"mem": OneStore()})


def check(started: dict[str, str]) -> None:
    """Every case answers 200 on both servers, and the managed one really is managed."""
    for case in CASES:
        for server in SERVERS:
            status, headers, body = probe(started[server], case.load.path, case.load.body)
            if status != 200 or body != ANSWER:
                raise RuntimeError(f"{case.name} on {server}: {status} {body[:300]!r}")
            managed = "x-prompt-cache" in headers
            if managed != (server == "wrapped" and case.name == "managed"):
                raise RuntimeError(f"{case.name} on {server}: x-prompt-cache is {managed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, duration=3.0)
    parser.set_defaults(rounds=5)  # more, shorter rounds: see bench/sidecar_load.py
    parser.add_argument("--log-level", choices=("warning", "info"), default="warning")
    parser.add_argument(
        "--app",
        choices=tuple(APPS),
        default="bare",
        help="the app wrapped: 'bare' reads the body only (the worst case); 'parse' also "
        "parses it with json.loads, as a chat endpoint must; 'fastapi' is a FastAPI endpoint "
        "that validates the request into a pydantic model, as services write one",
    )
    args = parser.parse_args(argv)
    if args.serve:
        configure_logging(args.log_level)
        serve_app(build_app(args.serve, args.app), args.port, lifespan="auto")
        return 0

    duration, rounds = (1.0, 1) if args.smoke else (args.duration, args.rounds)
    careful = not args.smoke
    kind = loadgen_kind(parser, args.loadgen)
    cores = split_cores()
    print(describe(kind, cores, args.connections, duration, rounds), flush=True)
    print(
        f"served app's logging: structlog, JSON, filtered at {args.log_level.upper()}, "
        "cache_logger_on_first_use=True (the canonical prompt_request line is at INFO)",
        flush=True,
    )
    print(f"wrapped app: {args.app}", flush=True)
    extra = ["--app", args.app]
    servers = [script_server(name, __file__, name, cores.tested, extra) for name in SERVERS]
    results: dict[tuple[str, str], list[Result]] = {
        (case.name, server): [] for case in CASES for server in SERVERS
    }
    together: dict[str, list[float]] = {case.name: [] for case in CASES}
    with tempfile.TemporaryDirectory() as scratch, running(servers) as started:
        check({name: server.url for name, server in started.items()})
        generator = LoadGenerator(kind, cores.loadgen, Path(scratch))
        if not args.smoke:  # warm up: code paths hot, the prompt cached
            for case in CASES:
                for server in SERVERS:
                    generator.run(started[server].url, case.load, args.connections, 1.0)
        for round_ in range(rounds):
            for case in CASES:
                # Alternate which server goes first: a machine that slows down during a round
                # must not always penalise the same one.
                for server in SERVERS if round_ % 2 == 0 else SERVERS[::-1]:
                    result = measure(
                        generator,
                        started[server],
                        case.load,
                        args.connections,
                        duration,
                        careful=careful,
                    )
                    results[(case.name, server)].append(result)
                    print(
                        f"  round {round_ + 1} {case.name:10} {server:9} {result.rps:9.0f} req/s "
                        f"{usage(result)} errors {result.errors}",
                        flush=True,
                    )
                unwrapped_rps, wrapped_rps = measure_together(
                    generator,
                    [started[server] for server in SERVERS],
                    case.load,
                    args.connections,
                    duration,
                )
                together[case.name].append(wrapped_rps / unwrapped_rps)
                print(
                    f"  round {round_ + 1} {case.name:10} together  {unwrapped_rps:9.0f} / "
                    f"{wrapped_rps:.0f} req/s: wrapped / unwrapped {together[case.name][-1]:.3f}",
                    flush=True,
                )
    print()
    print(_table(results, together))
    print(contention_note(r for rounds in results.values() for r in rounds))
    return 0


def _table(results: dict[tuple[str, str], list[Result]], together: dict[str, list[float]]) -> str:
    rows = []
    for case in CASES:
        ratio_together = median(together[case.name])
        unwrapped_rounds = results[(case.name, "unwrapped")]
        pairs = clean_rounds(
            list(zip(unwrapped_rounds, results[(case.name, "wrapped")], strict=True))
        )
        unwrapped, wrapped = [u for u, _ in pairs], [w for _, w in pairs]
        ratio = median(w.rps / u.rps for u, w in pairs)
        # Server CPU per request: what the middleware adds, as the served process pays it.
        added_us = median((w.server_cpu / w.rps - u.server_cpu / u.rps) * 1e4 for u, w in pairs)
        target = "—" if case.target is None else f"≥ {case.target:.2f}"
        # Judged on the ratio loaded together: see _common.measure_together.
        met = "" if case.target is None else mark(ratio_together >= case.target)
        rows.append(
            [
                case.label,
                f"{median(r.rps for r in unwrapped):,.0f}",
                f"{median(r.rps for r in wrapped):,.0f}",
                f"{ratio:.3f}",
                f"{ratio_together:.3f}",
                target,
                met,
                f"{added_us:.1f} µs",
                f"{median(r.server_cpu for r in unwrapped):.0f} % / "
                f"{median(r.server_cpu for r in wrapped):.0f} %",
                f"{median(r.loadgen_cpu for r in unwrapped + wrapped):.0f} %",
                str(sum(r.errors for r in unwrapped + wrapped)),
                f"{len(pairs)} / {len(unwrapped_rounds)}",
            ]
        )
    header = [
        "case (2 KB body)",
        "unwrapped req/s",
        "wrapped req/s",
        "wrapped / unwrapped, in turn",
        "wrapped / unwrapped, together",
        "target",
        "met",
        "added server CPU / request",
        "server CPU (unwrapped / wrapped)",
        "load generator CPU",
        "errors",
        "rounds used",
    ]
    return table(header, rows, "lrrrrrlrrrrr")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    raise SystemExit(main())
