"""The worker link: invalidations between the workers of one ``serve``, through Unix datagram
sockets in a shared directory. Real sockets; processes stand in as links of one loop here, the
sidecar tests run real worker processes."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from prompt_middleware.live.bus import Invalidation, InvalidationBus
from prompt_middleware.live.workers import WorkerLink


class Worker:
    def __init__(self, directory: Path, name: str) -> None:
        self.bus = InvalidationBus(origin="one-serve")
        self.seen: list[Invalidation] = []
        self.arrived = asyncio.Event()
        self.bus.subscribe(self._record)
        self.link = WorkerLink(str(directory), on_message=self.bus.receive, name=name)
        self.bus.add_link(self.link)

    def _record(self, invalidation: Invalidation) -> None:
        self.seen.append(invalidation)
        self.arrived.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.seen) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def test_an_invalidation_reaches_every_other_worker(tmp_path: Path) -> None:
    workers = [Worker(tmp_path, str(n)) for n in range(3)]
    for worker in workers:
        worker.link.start()
    try:
        workers[0].bus.publish("langfuse", "support/answer")
        for worker in workers:
            await worker.wait_for(1)
        assert [(w.seen[0].store, w.seen[0].prompt) for w in workers] == [
            ("langfuse", "support/answer")
        ] * 3
        assert all(len(worker.seen) == 1 for worker in workers)  # none applied it twice
    finally:
        for worker in workers:
            worker.link.close()
    assert sorted(os.listdir(tmp_path)) == []  # each worker removed its socket


async def test_a_dead_workers_socket_is_skipped_and_removed(tmp_path: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(tmp_path / "999999.sock"))
    dead.close()  # the file stays, nobody reads it: as after a worker was killed
    alive, sender = Worker(tmp_path, "alive"), Worker(tmp_path, "sender")
    alive.link.start()
    sender.link.start()
    try:
        sender.bus.publish(None, None)
        await alive.wait_for(1)
        assert not (tmp_path / "999999.sock").exists()
    finally:
        alive.link.close()
        sender.link.close()


def test_a_link_that_was_never_started_sends_nothing(tmp_path: Path) -> None:
    WorkerLink(str(tmp_path), on_message=lambda payload: None).send(b"{}")
    assert os.listdir(tmp_path) == []
