"""When a candidate cannot be served, the control is: counted always, warned about rarely.

A non-control variant whose prompt is not found, or whose store fails with no stale copy,
must never break the product: the engine serves the control instead and tells this policy.
Every fallback is counted (``/metrics`` reads :attr:`ControlFallbacks.counts`); the warning
is logged at most once per ``interval_seconds`` per experiment, and says how many fallbacks
it stands for, so a broken candidate at 1,000 requests a second is one line a minute.

The clock is injected, so tests move time instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import structlog

from prompt_middleware.experiments.choice import Arm, Split

__all__ = ["ControlFallbacks"]

logger = structlog.get_logger(__name__)


class ControlFallbacks:
    """Counts control fallbacks per (experiment, variant) and rate-limits their warning."""

    __slots__ = ("_clock", "_counts", "_interval", "_last_warning", "_unreported")

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, interval_seconds: float = 60.0
    ) -> None:
        self._clock = clock
        self._interval = interval_seconds
        self._counts: dict[tuple[str, str], int] = {}
        self._last_warning: dict[str, float] = {}
        self._unreported: dict[str, int] = {}

    @property
    def counts(self) -> Mapping[tuple[str, str], int]:
        """Fallbacks so far by (experiment name, the variant that could not be served)."""
        return self._counts

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
