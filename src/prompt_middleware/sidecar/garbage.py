"""The sidecar process's garbage collector, set for serving (README, "Performance").

CPython collects its youngest generation whenever the container objects allocated, less those
freed, pass 700. A server with a few dozen requests in flight holds more than that at any
moment, so it collected every few requests and found no garbage: what a request allocates is
freed by reference counting when it ends. Each collection traversed the requests in flight and
promoted them, and the older generations' collections then traversed them again, with every
object the process imported (a full collection took ~30 ms). Measured under load, that was
~9 % of the sidecar's CPU, with or without traces.

So ``prompt-middleware serve`` moves what start-up built out of the collector's sight
(``gc.freeze``) and collects its youngest generation after 20,000 net allocations instead:
still often enough that garbage in reference cycles stays bounded, rarely enough that requests
in flight alone never trigger it. Only the sidecar's own process is set: a host application
that runs the middleware keeps its collector as it chose.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["YOUNG_GENERATION_THRESHOLD", "set_for_serving"]

#: Net container allocations between two collections of the youngest generation (CPython: 700).
YOUNG_GENERATION_THRESHOLD: Final = 20_000


def set_for_serving() -> None:
    """Freeze what exists now (start-up's objects) and raise the youngest generation's
    threshold; the older generations keep theirs."""
    gc.collect()  # what start-up left in cycles is freed, not frozen
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)
