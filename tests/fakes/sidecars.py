"""Real sidecar processes (``python -m prompt_middleware serve``) for tests and benchmarks.

Each process gets a free 127.0.0.1 port and the environment it is given (nothing else of
this process's ``PROMPT_MIDDLEWARE_*``). Start-up is awaited by reading uvicorn's log for
"Uvicorn running on" (the port is bound: with one worker uvicorn binds it after the
application's start-up) and "Application startup complete" once per worker — events, not a
timer; the log is read to its end all along (a full pipe would stall the server) and kept for
a failing test to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from tests.fakes.processes import LoggedProcess

__all__ = ["Sidecar", "running_sidecars"]

ROOT = Path(__file__).resolve().parents[2]
_STARTED = b"Application startup complete"
_LISTENING = b"Uvicorn running on"
_START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sidecar(LoggedProcess):
    """One ``serve`` process: its URL and its log so far."""

    name = "the sidecar"

    def __init__(self, process: asyncio.subprocess.Process, port: int, workers: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._workers = workers
        self._started_workers = 0
        self._listening = False
        super().__init__(process)

    async def wait_started(self) -> None:
        await self.wait_ready(_START_TIMEOUT)

    def ready_after(self, line: bytes) -> bool:
        self._started_workers += _STARTED in line
        self._listening = self._listening or _LISTENING in line
        return self._listening and self._started_workers >= self._workers


async def start_sidecar(
    env: Mapping[str, str], *, workers: int = 1, arguments: Sequence[str] = ("--echo",)
) -> Sidecar:
    """Start one sidecar and return once every worker has started."""
    port = _free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PROMPT_MIDDLEWARE_", "LANGFUSE_", "HUMANLOOP_"))
    }
    environment.update(
        {
            "PYTHONPATH": str(ROOT / "src"),
            "PROMPT_MIDDLEWARE_LOG_LEVEL": "info",
            **env,
        }
    )
    command = [sys.executable, "-m", "prompt_middleware", "serve", "--port", str(port)]
    process = await asyncio.create_subprocess_exec(
        *command,
        "--workers",
        str(workers),
        *arguments,
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    sidecar = Sidecar(process, port, workers)
    try:
        await sidecar.wait_started()
    except BaseException:
        await sidecar.stop()
        raise
    return sidecar


@contextlib.asynccontextmanager
async def running_sidecars(
    count: int, env: Mapping[str, str], *, workers: int = 1
) -> AsyncIterator[list[Sidecar]]:
    """``count`` sidecars with the same environment, stopped on exit whatever happened."""
    sidecars: list[Sidecar] = []
    try:
        for _ in range(count):
            sidecars.append(await start_sidecar(env, workers=workers))
        yield sidecars
    finally:
        await asyncio.gather(*(sidecar.stop() for sidecar in sidecars))
