"""When a candidate cannot be served, the control is: counted always, warned about rarely,
and the failure remembered.

A non-control variant whose prompt is not found, or whose store fails with no stale copy,
must never break the product: the engine serves the control instead and tells this policy.
Every fallback is counted (``/metrics`` reads :attr:`ControlFallbacks.counts`); the warning
is logged at most once per ``interval_seconds`` per experiment, and says how many fallbacks
it stands for, so a broken candidate at 1,000 requests a second is one line a minute.

A variant whose prompt was not found is remembered as the cache remembers a failed store call
(README, "The cache"), which it does not do for a prompt not found: until its retry time,
counted from the failed call's end, the variant's requests go straight to the control
instead of asking the store again for a prompt that is not there.

The clock is injected, so tests move time instead of sleeping.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Final

import structlog

from prompt_middleware.cache import CacheKey
from prompt_middleware.experiments.choice import Arm, Split

__all__ = ["ControlFallbacks"]

logger = structlog.get_logger(__name__)

# Variants remembered as not found, at most (a variant's key includes a tenant's credential
# set, so the count is not bounded by the config alone): the oldest go first.
_MAX_MISSING: Final = 1024


class ControlFallbacks:
    """Counts control fallbacks per (experiment, variant), rate-limits their warning, and
    remembers the variants not found."""

    __slots__ = ("_clock", "_counts", "_interval", "_last_warning", "_missing", "_unreported")

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, interval_seconds: float = 60.0
    ) -> None:
        self._clock = clock
        self._interval = interval_seconds
        self._counts: dict[tuple[str, str], int] = {}
        self._last_warning: dict[str, float] = {}
        self._unreported: dict[str, int] = {}
        # A variant's prompt not found (its cache key) -> when the store may be asked again.
        self._missing: OrderedDict[CacheKey, float] = OrderedDict()

    @property
    def counts(self) -> Mapping[tuple[str, str], int]:
        """Fallbacks so far by (experiment name, the variant that could not be served)."""
        return self._counts

    def known_missing(self, key: CacheKey) -> bool:
        """True while the variant whose prompt is ``key`` is remembered as not found."""
        retry_at = self._missing.get(key)
        if retry_at is None:
            return False
        if self._clock() < retry_at:
            return True
        del self._missing[key]
        return False

    def not_found(self, key: CacheKey, retry_after_seconds: float) -> None:
        """The variant whose prompt is ``key`` was just not found: skip it for
        ``retry_after_seconds`` from now."""
        self._missing[key] = self._clock() + retry_after_seconds
        self._missing.move_to_end(key)
        while len(self._missing) > _MAX_MISSING:
            self._missing.popitem(last=False)

    def forget(self, matches: Callable[[CacheKey], bool]) -> None:
        """Ask the store again for every remembered variant whose key ``matches`` (the prompt
        was invalidated: it may exist now)."""
        for key in [key for key in self._missing if matches(key)]:
            del self._missing[key]

    def record(self, split: Split, arm: Arm, reason: str) -> None:
        """``arm`` of ``split`` could not be served (``reason``: an error code); the control was."""
        key = (split.name, arm.name)
        self._counts[key] = self._counts.get(key, 0) + 1
        unreported = self._unreported.get(split.name, 0) + 1
        now = self._clock()
        last = self._last_warning.get(split.name)
        if last is not None and now - last < self._interval:
            self._unreported[split.name] = unreported
            return
        self._last_warning[split.name] = now
        self._unreported[split.name] = 0
        logger.warning(
            "experiment_control_fallback",
            experiment=split.name,
            variant=arm.name,
            control=split.control.name,
            reason=reason,
            # This line stands for every fallback of the experiment since the last one.
            fallbacks=unreported,
        )
