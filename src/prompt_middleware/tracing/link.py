"""What a door knows about a request, turned into what its span needs."""

from __future__ import annotations

import time

from prompt_middleware.engine import RewriteResult
from prompt_middleware.tracing.attributes import PromptLink

__all__ = ["arrival_ns", "prompt_link"]


def prompt_link(result: RewriteResult) -> PromptLink | None:
    """The prompt a rewritten request was served with; None for an unmanaged one."""
    prompt = result.prompt
    if prompt is None or result.store is None or result.cache_status is None:
        return None
    return PromptLink(
        name=prompt.name,
        version=prompt.version,
        store=result.store,
        cache=result.cache_status.value,
        label=result.label,
        variant=result.variant_name,
    )


def arrival_ns(started: float) -> int:
    """The wall-clock time (ns since the epoch) of the ``time.perf_counter()`` ``started``."""
    return time.time_ns() - int((time.perf_counter() - started) * 1e9)
