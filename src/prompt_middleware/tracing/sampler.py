"""``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG``, decided on our own span's ids.

The samplers OpenTelemetry's SDK ships, with the same decisions: ``always_on``,
``always_off``, ``traceidratio`` (the trace id's low 64 bits below ``ratio * 2**64``, as the
SDK's ``TraceIdRatioBased`` does, so every service of a trace decides alike) and their
``parentbased_*`` forms (a parent's sampled flag decides; the named sampler decides a root).
The default is ``parentbased_always_on``. Anything else is a start-up error naming the
variable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from prompt_middleware.errors import ConfigurationError

__all__ = ["Sampler", "sampler_from_environ"]

_SAMPLER: Final = "OTEL_TRACES_SAMPLER"
_ARG: Final = "OTEL_TRACES_SAMPLER_ARG"
_LOW_64_BITS: Final = (1 << 64) - 1
_ROOT_SAMPLERS: Final = ("always_on", "always_off", "traceidratio")


@dataclass(frozen=True, slots=True)
class Sampler:
    """Samples a root span whose trace id's low 64 bits are below ``bound`` (``2**64``: all,
    0: none); with ``parent_based``, a span with a parent follows the parent's flag."""

    bound: int = 1 << 64
    parent_based: bool = True

    @property
    def always_off(self) -> bool:
        """True when no span is ever sampled (no parent can turn it on)."""
        return self.bound == 0 and not self.parent_based

    def sampled(self, trace_id: int, parent_sampled: bool | None) -> bool:
        """The decision for a span of ``trace_id``; ``parent_sampled`` None for a root."""
        if parent_sampled is not None and self.parent_based:
            return parent_sampled
        return trace_id & _LOW_64_BITS < self.bound


def sampler_from_environ(environ: Mapping[str, str]) -> Sampler:
    """The sampler the variables name; a clear start-up error for one we do not have."""
    value = environ.get(_SAMPLER, "").strip().lower() or "parentbased_always_on"
    name = value.removeprefix("parentbased_")
    if name not in _ROOT_SAMPLERS:
        raise ConfigurationError(
            f"{_SAMPLER}={value!r} is not one of always_on, always_off, traceidratio, "
            "parentbased_always_on, parentbased_always_off, parentbased_traceidratio."
        )
    parent_based = value != name
    if name == "always_on":
        return Sampler(1 << 64, parent_based)
    if name == "always_off":
        return Sampler(0, parent_based)
    return Sampler(_bound(_ratio(environ.get(_ARG))), parent_based)


def _ratio(value: str | None) -> float:
    if value is None or not value.strip():
        return 1.0
    try:
        ratio = float(value)
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:
        raise ConfigurationError(f"{_ARG}={value!r} is not a ratio between 0 and 1.")
    return ratio


def _bound(ratio: float) -> int:
    # TraceIdRatioBased.get_bound_for_rate, so that a trace is sampled alike everywhere.
    return round(ratio * (_LOW_64_BITS + 1))
