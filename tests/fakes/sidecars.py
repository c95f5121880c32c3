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
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

__all__ = ["Sidecar", "running_sidecars"]

ROOT = Path(__file__).resolve().parents[2]
_STARTED = b"Application startup complete"
_LISTENING = b"Uvicorn running on"
_START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sidecar:
    """One ``serve`` process: its URL and its log so far."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, workers: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log: list[bytes] = []
        self._workers = workers
        self._started = asyncio.Event()
        self._logged = asyncio.Event()  # set on every new line
        self._reader = asyncio.create_task(self._read_log())

    @property
    def log_text(self) -> str:
        return b"".join(self.log[-400:]).decode(errors="replace")

    def count(self, needle: bytes) -> int:
        """How many lines of the log so far contain ``needle``."""
        return sum(needle in line for line in self.log)

    async def wait_for_log(self, needle: bytes, count: int = 1, seconds: float = 15.0) -> None:
        """Return once ``count`` lines of the log contain ``needle`` (woken by each line)."""
        async with asyncio.timeout(seconds):
            while self.count(needle) < count:
                self._logged.clear()
                await self._logged.wait()

    async def wait_started(self) -> None:
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                done = asyncio.create_task(self._started.wait())
                exited = asyncio.create_task(self.process.wait())
                await asyncio.wait({done, exited}, return_when=asyncio.FIRST_COMPLETED)
                exited.cancel()
                done.cancel()
        except TimeoutError:
            raise RuntimeError(f"the sidecar did not start:\n{self.log_text}") from None
        if not self._started.is_set():
            raise RuntimeError(f"the sidecar exited:\n{self.log_text}")

    async def _read_log(self) -> None:
        assert self.process.stderr is not None
        started, listening = 0, False
        while line := await self.process.stderr.readline():
            self.log.append(line)
            self._logged.set()
            started += _STARTED in line
            listening = listening or _LISTENING in line
            if listening and started >= self._workers:
                self._started.set()

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


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
