"""A server process a test starts: its stderr log read to its end all along (a full pipe would
stall it) and kept for a failing test to show, readiness awaited on that log (an event, not a
timer), and a stop that always ends it."""

from __future__ import annotations

import asyncio
import contextlib
import signal

__all__ = ["LoggedProcess"]


class LoggedProcess:
    """One child process with its stderr piped; subclasses say which log line means ready."""

    #: Named in the errors of a process that does not start.
    name = "the process"

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.log: list[bytes] = []
        self._ready = asyncio.Event()
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

    def ready_after(self, line: bytes) -> bool:
        """Whether the process is ready once it has logged ``line`` (and those before)."""
        raise NotImplementedError

    async def wait_ready(self, seconds: float) -> None:
        """Return once ready; fail with the log if it exits or takes ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                ready = asyncio.create_task(self._ready.wait())
                exited = asyncio.create_task(self.process.wait())
                await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
                exited.cancel()
                ready.cancel()
        except TimeoutError:
            raise RuntimeError(f"{self.name} did not start:\n{self.log_text}") from None
        if not self._ready.is_set():
            raise RuntimeError(f"{self.name} exited:\n{self.log_text}")

    async def _read_log(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.log.append(line)
            self._logged.set()
            if self.ready_after(line):
                self._ready.set()

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
