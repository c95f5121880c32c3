"""The invalidation bus: applied here at once, fanned out to other buses through real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from prompt_middleware.live.bus import Invalidation, InvalidationBus
from tests.fakes.redis_server import RedisServer
from tests.live._watched import WatchedLink


class Recorder:
    """A subscriber that records invalidations and wakes a waiter on each."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str | None]] = []
        self._changed = asyncio.Event()

    def __call__(self, invalidation: Invalidation) -> None:
        self.seen.append((invalidation.store, invalidation.prompt))
        self._changed.set()

    async def wait_for(self, count: int, seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds):
            while len(self.seen) < count:
                self._changed.clear()
                await self._changed.wait()


class Replica:
    def __init__(self, url: str, origin: str | None = None) -> None:
        self.bus = InvalidationBus(origin=origin)
        self.recorder = Recorder()
        self.bus.subscribe(self.recorder)
        self.watched = WatchedLink(
            url, on_message=lambda payload: self.bus.receive(payload, from_replicas=True)
        )
        self.link = self.watched.link
        self.bus.add_link(self.link)


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[Callable[[], Replica]]:
    started: list[Replica] = []

    def make() -> Replica:
        replica = Replica(redis_server.url)
        started.append(replica)
        return replica

    yield make
    for replica in started:
        await replica.link.aclose()


async def start(*replicas: Replica) -> None:
    for replica in replicas:
        await replica.link.start()
    for replica in replicas:
        await asyncio.wait_for(replica.link.wait_subscribed(), 10)


def test_a_publication_is_applied_here_before_publish_returns() -> None:
    bus, recorder = InvalidationBus(), Recorder()
    bus.subscribe(recorder)
    bus.publish("langfuse", "support/answer")
    assert recorder.seen == [("langfuse", "support/answer")]


def test_a_failing_link_or_subscriber_does_not_fail_the_publisher() -> None:
    class Broken:
        def send(self, payload: bytes) -> None:
            raise OSError("down")

    def failing(invalidation: Invalidation) -> None:
        raise RuntimeError("boom")

    bus, recorder = InvalidationBus(), Recorder()
    bus.subscribe(failing)
    bus.subscribe(recorder)
    bus.add_link(Broken())
    bus.publish(None, None)
    assert recorder.seen == [(None, None)]


def test_an_undecodable_message_is_ignored() -> None:
    bus, recorder = InvalidationBus(), Recorder()
    bus.subscribe(recorder)
    bus.receive(b"\xff not json", from_replicas=True)
    bus.receive(b'{"store": 3}', from_replicas=True)
    assert recorder.seen == []


def test_redis_echoes_of_the_own_group_are_skipped_but_worker_messages_are_not() -> None:
    sender, receiver = InvalidationBus(origin="group-1"), InvalidationBus(origin="group-1")
    payloads: list[bytes] = []
    sender.add_link(type("Capture", (), {"send": staticmethod(payloads.append)})())
    recorder = Recorder()
    receiver.subscribe(recorder)
    sender.publish("file", "greeting")
    receiver.receive(payloads[0], from_replicas=True)  # from Redis: a sibling had it already
    assert recorder.seen == []
    receiver.receive(payloads[0])  # from the worker link
    assert recorder.seen == [("file", "greeting")]


async def test_an_invalidation_reaches_another_replica_through_redis(
    replicas: Callable[[], Replica],
) -> None:
    first, second = replicas(), replicas()
    await start(first, second)
    first.bus.publish("langfuse", "support/answer")
    await second.recorder.wait_for(1)
    assert second.recorder.seen == [("langfuse", "support/answer")]
    second.bus.publish(None, None)
    await first.recorder.wait_for(2)
    assert first.recorder.seen == [("langfuse", "support/answer"), (None, None)]
    # Neither applied its own message a second time when Redis echoed it back.
    await second.recorder.wait_for(2)
    assert second.recorder.seen == [("langfuse", "support/answer"), (None, None)]


async def test_fan_out_resumes_after_redis_is_killed_and_restarted(
    replicas: Callable[[], Replica], redis_server: RedisServer
) -> None:
    first, second = replicas(), replicas()
    await start(first, second)
    assert first.link.redis_up
    redis_server.kill()
    await first.watched.wait_state(up=False)
    await second.watched.wait_state(up=False)
    first.bus.publish("file", "while-down")  # applied here; Redis is not waited for
    assert first.recorder.seen == [("file", "while-down")]
    redis_server.start()
    await first.watched.wait_state(up=True)
    # Within ten seconds of Redis answering again, both listen again.
    for replica in (first, second):
        await asyncio.wait_for(replica.link.wait_subscribed(), 10)
    first.bus.publish("file", "after")
    # What was published while Redis was down was queued, and is delivered too.
    await second.recorder.wait_for(2)
    assert sorted(second.recorder.seen) == [("file", "after"), ("file", "while-down")]
    assert first.watched.states[:2] == [True, False]
    assert first.watched.states[-1] is True
