"""Trace and span ids: random, from a generator of this process's own.

``random.Random.getrandbits`` costs a tenth of a microsecond, ``os.urandom`` several times
that; ids need to be unique, not secret (W3C trace context asks for randomness, not for a
cryptographic source), so a Mersenne Twister seeded from ``os.urandom`` serves — seeded again
in a forked child, whose ids would otherwise repeat its parent's.
"""

from __future__ import annotations

import os
import random
from typing import Final

__all__ = ["new_span_id", "new_trace_id"]

_generator: Final = random.Random(os.urandom(32))  # noqa: S311 (unique, not secret)
os.register_at_fork(after_in_child=lambda: _generator.seed(os.urandom(32)))
_bits: Final = _generator.getrandbits


def new_trace_id() -> int:
    """A 128-bit trace id, never 0 (which W3C reserves for "invalid")."""
    trace_id = _bits(128)
    while not trace_id:
        trace_id = _bits(128)
    return trace_id


def new_span_id() -> int:
    """A 64-bit span id, never 0."""
    span_id = _bits(64)
    while not span_id:
        span_id = _bits(64)
    return span_id
