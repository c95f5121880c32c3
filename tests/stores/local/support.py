"""Helpers of the local-store tests: a clock the tests move, and files with their own mtime."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from prompt_middleware.prompts import Prompt, PromptQuery
from prompt_middleware.stores.local import LocalPromptStore
from prompt_middleware.stores.local import scan as scan_module
from prompt_middleware.stores.local import store as store_module

POLL = 0.5


_mtime_steps = itertools.count(1)


def write(folder: Path, relative: str, text: str) -> Path:
    """Write a file with an mtime of its own, so change detection never depends on timing."""
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    mtime_ns = 1_600_000_000_000_000_000 + next(_mtime_steps) * 1_000_000_000
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


async def get(
    store: LocalPromptStore, name: str, *, label: str | None = None, version: int | None = None
) -> Prompt:
    return await store.get_prompt(PromptQuery(name, label=label, version=version))


def count_scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap the folder scan; returns the list of thread ids the scans ran in."""
    threads: list[int] = []
    scan = scan_module.scan_folder

    def counting(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return scan(*args)

    monkeypatch.setattr(store_module, "scan_folder", counting)
    return threads
