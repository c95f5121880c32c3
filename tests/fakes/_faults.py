"""The fault knobs every fake prompt service has, written once.

``latency`` (seconds every request waits — the fake server's own delay, not a test's sleep),
``fail_with`` (answer every request with this status), :meth:`fail_next`, ``broken_body``
(answer a 200 with these bytes instead), and :meth:`hold` / :meth:`release` /
:meth:`wait_for_held` for deterministic concurrency tests.
"""

from __future__ import annotations

import asyncio


class FaultKnobs:
    def __init__(self) -> None:
        #: Seconds every request waits before it is answered.
        self.latency: float = 0.0
        #: When set, every request is answered with this status, before auth is checked
        #: (an outage comes before the application).
        self.fail_with: int | None = None
        #: When set, a 200 is answered with these bytes instead of the prompt.
        self.broken_body: bytes | None = None
        self._failures: list[int] = []
        self._gate: asyncio.Event | None = None
        self._held = 0
        self._held_changed = asyncio.Condition()

    def fail_next(self, n: int, status: int) -> None:
        """Answer the next ``n`` requests with ``status``."""
        self._failures.extend([status] * n)

    def hold(self) -> None:
        """Hold every request, once counted, until :meth:`release`."""
        if self._gate is None:
            self._gate = asyncio.Event()

    def release(self) -> None:
        """Let held requests (and later ones) be answered."""
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    @property
    def held(self) -> int:
        return self._held

    async def wait_for_held(self, n: int) -> None:
        """Wait until ``n`` requests are being held."""
        async with self._held_changed:
            await self._held_changed.wait_for(lambda: self._held >= n)

    def _next_failure(self) -> int | None:
        """The status this request must fail with, if any."""
        return self._failures.pop(0) if self._failures else self.fail_with

    async def _wait(self) -> None:
        if self.latency:
            await asyncio.sleep(self.latency)
        gate = self._gate
        if gate is None:
            return
        async with self._held_changed:
            self._held += 1
            self._held_changed.notify_all()
        try:
            await gate.wait()
        finally:
            async with self._held_changed:
                self._held -= 1
                self._held_changed.notify_all()
