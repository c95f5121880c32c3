"""The ``prompt-middleware`` command: ``render`` (and, later, ``serve``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import BinaryIO

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
    if arguments.command == "render":
        return asyncio.run(_render(settings, sys.stdin.buffer, sys.stdout.buffer))
    return 2  # pragma: no cover - argparse rejects unknown commands


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
