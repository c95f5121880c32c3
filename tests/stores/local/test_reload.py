"""Live reload: one shared scan off the event loop, at most every poll interval."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable
from prompt_middleware.stores.local import LocalPromptStore
from prompt_middleware.stores.local import scan as scan_module
from prompt_middleware.stores.local import store as store_module
from tests.fakes.clock import FakeClock
from tests.stores.local.support import POLL, count_scans, get, write


def test_negative_poll_interval_is_refused(folder: Path) -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        LocalPromptStore(folder, poll_interval=-1)


async def test_edits_are_picked_up_after_the_poll_interval_and_not_before(
    folder: Path, store: LocalPromptStore, clock: FakeClock
) -> None:
    write(folder, "a.yaml", "prompt: one")
    write(folder, "gone.yaml", "prompt: bye")
    assert (await get(store, "a")).prompt == "one"
    assert (await get(store, "gone")).prompt == "bye"

    write(folder, "a.yaml", "prompt: two")
    write(folder, "new.yaml", "prompt: hello")
    (folder / "gone.yaml").unlink()

    clock.advance(POLL / 2)
    assert (await get(store, "a")).prompt == "one"
    assert (await get(store, "gone")).prompt == "bye"
    with pytest.raises(PromptNotFound):
        await get(store, "new")

    clock.advance(POLL / 2)
    assert (await get(store, "a")).prompt == "two"
    assert (await get(store, "new")).prompt == "hello"
    with pytest.raises(PromptNotFound):
        await get(store, "gone")


async def test_a_fixed_file_is_served_again(
    folder: Path, store: LocalPromptStore, clock: FakeClock
) -> None:
    write(folder, "a.yaml", "prompt: [")
    with pytest.raises(PromptStoreUnavailable):
        await get(store, "a")
    write(folder, "a.yaml", "prompt: fixed")
    clock.advance(POLL)
    assert (await get(store, "a")).prompt == "fixed"


async def test_a_replaced_file_with_the_same_mtime_and_size_is_seen(
    folder: Path, store: LocalPromptStore, clock: FakeClock
) -> None:
    # Editors and ConfigMap updates replace a file by renaming a new one over it.
    path = write(folder, "a.yaml", "prompt: one")
    assert (await get(store, "a")).prompt == "one"
    stat = path.stat()
    replacement = write(folder, "a.tmp", "prompt: two")
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)
    clock.advance(POLL)
    assert (await get(store, "a")).prompt == "two"


async def test_only_changed_files_are_parsed_again(
    folder: Path, store: LocalPromptStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    load = scan_module.load_file

    def counting(path: str, relative: str, seen: Any) -> Any:
        loads.append(relative)
        return load(path, relative, seen)

    monkeypatch.setattr(scan_module, "load_file", counting)
    write(folder, "a.yaml", "prompt: a")
    write(folder, "b.yaml", "prompt: b")
    await get(store, "a")
    assert sorted(loads) == ["a.yaml", "b.yaml"]

    clock.advance(POLL)
    await get(store, "a")
    assert sorted(loads) == ["a.yaml", "b.yaml"]

    write(folder, "b.yaml", "prompt: bb")
    clock.advance(POLL)
    assert (await get(store, "b")).prompt == "bb"
    assert sorted(loads) == ["a.yaml", "b.yaml", "b.yaml"]


async def test_the_first_call_scans_and_calls_within_the_interval_do_not(
    folder: Path, store: LocalPromptStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = count_scans(monkeypatch)
    write(folder, "a.yaml", "prompt: a")
    for _ in range(3):
        await get(store, "a")
    assert len(scans) == 1
    clock.advance(POLL)
    await get(store, "a")
    assert len(scans) == 2


async def test_concurrent_calls_share_one_scan_that_runs_off_the_event_loop(
    folder: Path, store: LocalPromptStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = count_scans(monkeypatch)
    write(folder, "a.yaml", "prompt: a")
    prompts = await asyncio.gather(*(get(store, "a") for _ in range(20)))
    assert {prompt.prompt for prompt in prompts} == {"a"}
    assert len(scans) == 1
    assert scans[0] != threading.get_ident()


async def test_a_cancelled_caller_does_not_cancel_the_shared_scan(
    folder: Path, store: LocalPromptStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(folder, "a.yaml", "prompt: a")
    started, release = threading.Event(), threading.Event()
    scan = scan_module.scan_folder
    scans: list[int] = []

    def blocking(*args: Any) -> Any:
        scans.append(1)
        started.set()
        release.wait(timeout=10)
        return scan(*args)

    monkeypatch.setattr(store_module, "scan_folder", blocking)
    first = asyncio.create_task(get(store, "a"))
    await asyncio.to_thread(started.wait, 10)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    second = asyncio.create_task(get(store, "a"))
    release.set()
    assert (await second).prompt == "a"
    assert len(scans) == 1
    await store.aclose()


async def test_aclose_waits_for_a_scan_in_flight(
    folder: Path, store: LocalPromptStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(folder, "a.yaml", "prompt: a")
    finished: list[bool] = []
    scan = scan_module.scan_folder

    def recording(*args: Any) -> Any:
        result = scan(*args)
        finished.append(True)
        return result

    monkeypatch.setattr(store_module, "scan_folder", recording)
    caller = asyncio.create_task(get(store, "a"))
    await asyncio.sleep(0)  # one turn of the loop: the caller starts the scan
    assert finished == []
    await store.aclose()
    assert finished == [True]
    assert (await caller).prompt == "a"
