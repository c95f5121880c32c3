"""What one render has written and may still write: its values, missing variables, its bound.

One :class:`RenderState` per render, reached through :data:`RENDERING` by the environment's
hooks (``sandbox.py``) and the size checks (``bounds.py``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Final

__all__ = ["MAX_CAPTURED", "RENDERING", "RenderState", "TooLarge"]

# Characters written into captures, all together; also the bound of a render given no limit.
MAX_CAPTURED: Final = 10_000_000


class TooLarge(Exception):
    """A render would build a value, or messages, too large to be a prompt's."""


class RenderState:
    """What one render wrote: the values behind its tokens, the variables it lacked; and the
    most text any one step of it may make (``limit``)."""

    __slots__ = ("captured", "capturing", "limit", "missing", "values")

    def __init__(self, limit: int | None = None) -> None:
        self.values: list[str] = []
        self.missing: dict[str, None] = {}
        self.capturing = 0  # how many captures are being written (they nest)
        self.captured = 0  # characters written into them so far
        self.limit = MAX_CAPTURED if limit is None else limit


RENDERING: ContextVar[RenderState] = ContextVar("prompt_middleware_jinja_render")
