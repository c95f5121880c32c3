"""``prompt_variables`` within the limits of the settings: size, entries, nesting depth."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from prompt_middleware.errors import InvalidRequest
from prompt_middleware.request import Field, RequestFields

__all__ = ["VariableLimits"]

_PROMPT_VARIABLES: Final = Field("prompt_variables", dict[str, Any])


class VariableLimits:
    """Decodes ``prompt_variables``, refusing (400) what is over a limit."""

    __slots__ = ("max_bytes", "max_depth", "max_entries")

    def __init__(self, *, max_bytes: int, max_entries: int, max_depth: int) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.max_depth = max_depth

    def decode(self, fields: RequestFields) -> dict[str, Any]:
        """The request's ``prompt_variables`` ({} when absent)."""
        raw = fields.get("prompt_variables")
        if raw is None:
            return {}
        if len(raw) > self.max_bytes:
            raise InvalidRequest(
                f"'prompt_variables' is larger than {self.max_bytes} bytes "
                "(PROMPT_MIDDLEWARE_MAX_VARIABLES_BYTES).",
                param="prompt_variables",
            )
        variables: dict[str, Any] = _PROMPT_VARIABLES(fields) or {}
        if len(variables) > self.max_entries:
            raise InvalidRequest(
                f"'prompt_variables' has more than {self.max_entries} entries "
                "(PROMPT_MIDDLEWARE_MAX_VARIABLES).",
                param="prompt_variables",
            )
        limit = self.max_depth
        if _may_nest_deeper(raw, limit) and _depth(variables, limit) > limit:
            raise InvalidRequest(
                f"'prompt_variables' is nested more than {limit} levels "
                "deep (PROMPT_MIDDLEWARE_MAX_VARIABLES_DEPTH).",
                param="prompt_variables",
            )
        return variables


def _may_nest_deeper(raw: msgspec.Raw, limit: int) -> bool:
    # JSON nests no deeper than it has opening brackets (those inside strings only add to
    # the count), and has two bytes per level at least: both spare the walk for the usual
    # flat variables.
    if len(raw) < 2 * (limit + 1):
        return False
    text = bytes(raw)
    return text.count(b"{") + text.count(b"[") > limit


def _depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests, counted no further than ``limit + 1``."""
    depth, level = 0, [value]
    while level and depth <= limit:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
    return depth
