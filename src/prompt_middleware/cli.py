"""The ``prompt-middleware`` command: ``render`` (and, later, ``serve``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import BinaryIO

import structlog

from prompt_middleware.errors import ConfigurationError, RequestError
from prompt_middleware.rewrite import RewriteEngine
from prompt_middleware.settings import Settings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="prompt-middleware",
        description="Managed prompts in front of OpenAI-compatible chat endpoints.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "render",
        help="read a chat request body on stdin, print the rewritten body on stdout",
        description="Read a chat-completions request body (JSON) on stdin and print the body "
        "the upstream would get, without sending it. On an error, print the error JSON and "
        "exit with status 1. Settings come from the environment, as for the middleware.",
    )
    arguments = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigurationError as exc:
        print(f"prompt-middleware: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    if arguments.command == "render":
        return asyncio.run(_render(settings, sys.stdin.buffer, sys.stdout.buffer))
    return 2  # pragma: no cover - argparse rejects unknown commands


def _configure_logging(level: str) -> None:
    # Logs go to stderr: stdout carries the command's output (the rewritten body).
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


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
