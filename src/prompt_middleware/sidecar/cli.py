"""The ``prompt-middleware`` command: ``serve`` the sidecar, ``render`` a request."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import BinaryIO

from prompt_middleware.engine import RewriteEngine
from prompt_middleware.errors import ConfigurationError, RequestError
from prompt_middleware.settings import Settings
from prompt_middleware.sidecar.logs import configure_early_logging, configure_logging

__all__ = ["main"]

_PREFIX = "PROMPT_MIDDLEWARE_"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    arguments = _parser().parse_args(argv)
    # Flags are settings too: put them in the environment, which uvicorn's worker
    # processes inherit and read, so one set of rules configures every process.
    for name in ("host", "port", "workers"):
        value = getattr(arguments, name, None)
        if value is not None:
            os.environ[_PREFIX + name.upper()] = str(value)
    for flag in ("echo", "detailed_debug"):
        if getattr(arguments, flag, False):
            os.environ[_PREFIX + flag.upper()] = "true"
    configure_early_logging()
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        print(f"prompt-middleware: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if arguments.command == "render":
        return asyncio.run(_render(settings, sys.stdin.buffer, sys.stdout.buffer))
    return _serve(settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prompt-middleware",
        description="Managed prompts in front of OpenAI-compatible chat endpoints. Settings "
        "come from PROMPT_MIDDLEWARE_* environment variables (see the README).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the sidecar: the middleware in front of the upstream LLM API",
        description="Serve the middleware in front of PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL "
        "(or the config file's api_base entries) with uvicorn.",
    )
    serve.add_argument("--host", help="address to listen on (PROMPT_MIDDLEWARE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (PROMPT_MIDDLEWARE_PORT, 4000)")
    serve.add_argument(
        "--workers", type=int, help="worker processes (PROMPT_MIDDLEWARE_WORKERS, 1)"
    )
    serve.add_argument(
        "--echo",
        action="store_true",
        help="no upstream: answer each request with the rewritten request (a dry run)",
    )
    serve.add_argument(
        "--detailed-debug",
        action="store_true",
        help="log every request sent upstream as a curl command, secrets redacted",
    )
    commands.add_parser(
        "render",
        help="read a chat request body on stdin, print the rewritten body on stdout",
        description="Read a chat-completions request body (JSON) on stdin and print the body "
        "the upstream would get, without sending it. On an error, print the error JSON and "
        "exit with status 1.",
    )
    return parser


def _serve(settings: Settings) -> int:
    import uvicorn

    from prompt_middleware.sidecar import create_app_from_env

    try:
        create_app_from_env()  # fail here, with the reason, rather than in every worker
    except ConfigurationError as exc:
        print(f"prompt-middleware: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        "prompt_middleware.sidecar:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        lifespan="on",
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        # The upstream's own server and date headers are passed back: no second copy.
        server_header=False,
        date_header=False,
        # Nothing here reads the client's address: rewriting it from X-Forwarded-For would
        # be work per request for no one.
        proxy_headers=False,
    )
    return 0


async def _render(settings: Settings, stdin: BinaryIO, stdout: BinaryIO) -> int:
    engine = RewriteEngine(settings)
    body = stdin.read()
    try:
        result = await engine.rewrite(body)
    except RequestError as error:
        stdout.write(error.to_json() + b"\n")
        return 1
    finally:
        await engine.aclose()
    stdout.write((body if result is None else result.body) + b"\n")
    return 0
