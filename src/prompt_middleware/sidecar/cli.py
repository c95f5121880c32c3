"""The ``prompt-middleware`` command: ``serve`` the sidecar, ``render`` a request.

``serve --workers N`` (N > 1) gives its workers one private temporary directory, removed when
it stops: their sockets for passing invalidations to each other
(``PROMPT_MIDDLEWARE_WORKER_DIR``) and, in ``metrics/``, prometheus-client's multiprocess
files (``PROMETHEUS_MULTIPROC_DIR``), so that every scrape shows the sum over the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from prompt_middleware.apis import APIS, CHAT, Api, api_named
from prompt_middleware.engine import RewriteEngine
from prompt_middleware.errors import ConfigurationError, RequestError
from prompt_middleware.live.workers import WORKER_DIR_VARIABLE
from prompt_middleware.settings import Settings
from prompt_middleware.sidecar.logs import configure_early_logging, configure_logging
from prompt_middleware.sidecar.shared_metrics import MULTIPROCESS_VARIABLE

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
        api = api_named(arguments.api)
        return asyncio.run(_render(settings, sys.stdin.buffer, sys.stdout.buffer, api))
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
    render = commands.add_parser(
        "render",
        help="read a request body on stdin, print the rewritten body on stdout",
        description="Read a request body (JSON) on stdin and print the body the upstream "
        "would get, without sending it. On an error, print the error JSON (in the API's "
        "shape) and exit with status 1.",
    )
    render.add_argument(
        "--api",
        choices=[api.name for api in APIS],
        default=CHAT.name,
        help="the API of the body: chat (completions, the default), responses or messages",
    )
    return parser


def _serve(settings: Settings) -> int:
    from prompt_middleware.sidecar import create_app_from_env

    try:
        create_app_from_env()  # fail here, with the reason, rather than in every worker
    except ConfigurationError as exc:
        print(f"prompt-middleware: {exc}", file=sys.stderr)
        return 2
    with _shared_by_workers(settings.workers):
        _run_uvicorn(settings)
    return 0


@contextlib.contextmanager
def _shared_by_workers(workers: int) -> Iterator[None]:
    """With several workers: the private directory they share, named in the environment
    they inherit, and removed (with every socket and metrics file) when they have stopped."""
    if workers <= 1:
        yield
        return
    directory = tempfile.mkdtemp(prefix="prompt-middleware-")  # mode 0700: ours alone
    metrics = os.path.join(directory, "metrics")
    os.mkdir(metrics)
    os.environ[WORKER_DIR_VARIABLE] = directory
    os.environ[MULTIPROCESS_VARIABLE] = metrics
    try:
        yield
    finally:
        os.environ.pop(WORKER_DIR_VARIABLE, None)
        os.environ.pop(MULTIPROCESS_VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)


def _run_uvicorn(settings: Settings) -> None:
    import uvicorn

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


async def _render(settings: Settings, stdin: BinaryIO, stdout: BinaryIO, api: Api = CHAT) -> int:
    engine = RewriteEngine(settings)
    body = stdin.read()
    try:
        result = await engine.rewrite(body, api=api)
    except RequestError as error:
        stdout.write(api.error_json(error) + b"\n")
        return 1
    finally:
        await engine.aclose()
    stdout.write((body if result is None else result.body) + b"\n")
    return 0
