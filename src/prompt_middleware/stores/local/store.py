"""The store: answers lookups from the latest snapshot, rescanning at most every poll interval."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from prompt_middleware.errors import InvalidPromptRequest, PromptStoreUnavailable
from prompt_middleware.prompts import Prompt, PromptQuery
from prompt_middleware.stores.local.index import Broken, lookup
from prompt_middleware.stores.local.scan import Snapshot, scan_folder


class LocalPromptStore:
    """Prompts from a folder of ``.yaml``, ``.yml``, ``.json`` and ``.prompt`` files."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if poll_interval < 0:
            raise ValueError(f"poll_interval must be >= 0, got {poll_interval!r}")
        self._directory = Path(directory)
        self._poll_interval = poll_interval
        self._clock = clock
        self._snapshot = Snapshot()
        self._scanned_at: float | None = None
        self._scan_task: asyncio.Task[None] | None = None
        self._forgets = 0  # a scan that ran across a forget() does not count as done

    async def get_prompt(self, query: PromptQuery) -> Prompt:
        """The version of the prompt that ``query`` names, as of at most ``poll_interval`` ago."""
        _check_name(query.name)
        await self._refresh_if_due()
        snapshot = self._snapshot
        if snapshot.folder_error is not None:
            raise PromptStoreUnavailable(snapshot.folder_error)
        return lookup(snapshot.prompts, query)

    async def aclose(self) -> None:
        """Wait for a scan in flight, so that no worker outlives the store."""
        if self._scan_task is not None:
            await asyncio.gather(self._scan_task, return_exceptions=True)

    def forget(self) -> None:
        """Read the folder again on the next lookup, even if a scan is running now (it may
        have read a file before the change an invalidation announces)."""
        self._scanned_at = None
        self._forgets += 1

    def check(self) -> dict[str, str]:
        """Scan the folder now, blocking, and return ``{prompt name: reason}`` of every prompt
        that cannot be served. For command-line tools; it leaves the store's index alone."""
        snapshot = scan_folder(self._directory, Snapshot())
        if snapshot.folder_error is not None:
            raise PromptStoreUnavailable(snapshot.folder_error)
        return {
            name: entry.reason
            for name, entry in sorted(snapshot.prompts.items())
            if isinstance(entry, Broken)
        }

    async def _refresh_if_due(self) -> None:
        while True:  # once more when forget() came during the scan waited for
            task = self._scan_task
            if task is None:
                scanned_at = self._scanned_at
                if scanned_at is not None and self._clock() - scanned_at < self._poll_interval:
                    return
                task = self._scan_task = asyncio.create_task(self._rescan())
            # Every caller waits on the one scan; shielded so that a caller that times out or
            # goes away does not cancel it for the others (its result is kept for the next call).
            await asyncio.shield(task)
            if self._scanned_at is not None:
                return

    async def _rescan(self) -> None:
        started, forgets = self._clock(), self._forgets
        try:
            # Walking and parsing touch the disk: keep them off the event loop.
            self._snapshot = await asyncio.to_thread(scan_folder, self._directory, self._snapshot)
            if forgets == self._forgets:
                self._scanned_at = started
        finally:
            self._scan_task = None


def _check_name(name: str) -> None:
    # Lookups never touch the disk with a requested name, but a name that could only mean
    # a path outside the folder is refused outright rather than reported as missing.
    reason: str | None = None
    if not name:
        reason = "it is empty"
    elif "\x00" in name:
        reason = "it contains a NUL character"
    elif "\\" in name:
        reason = "it contains a backslash; folders are separated by '/'"
    elif name.startswith("/"):
        reason = "it is an absolute path; names are relative to the prompt folder"
    elif ".." in name.split("/"):
        reason = "it contains a '..' segment"
    if reason is not None:
        raise InvalidPromptRequest(
            f"prompt_id {name!r} is not a valid prompt name: {reason}", param="prompt_id"
        )
