"""The one Jinja environment: sandboxed, immutable, and writing every value as a token.

``{{ expression }}`` output goes through :func:`_finalize`, which keeps the text in the render's
:class:`RenderState` and writes ``"\\ue000<nonce>:<index>\\ue001"`` in its place: private-use
characters around a per-process number, so that neither a template's text nor a value is taken
for a token. Inside a capture (:mod:`prompt_middleware.jinja.captures`) values are written as
they are, since the template works on that text; the capture then reaches the output as one
value.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from typing import Any, Final

from jinja2 import pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import ChainableUndefined, Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

__all__ = ["ENVIRONMENT", "OPEN", "RENDERING", "TOKEN", "RenderState", "TooLarge"]

_NONCE: Final = str(secrets.randbelow(10**9))
OPEN: Final = "\ue000"
_TOKEN_PREFIX: Final = f"{OPEN}{_NONCE}:"
TOKEN: Final = re.compile(f"{OPEN}{_NONCE}:([0-9]+)\ue001")
# Repetition (``'-' * n``) and powers could build gigabytes from a small request.
_MAX_REPEATED_LENGTH: Final = 1_000_000
_MAX_POWER_BITS: Final = 100_000
# Loops over a request's lists (nested, say) could write millions of values: each is kept
# until the render ends, so their number is bounded too.
_MAX_WRITTEN: Final = 100_000
_MAX_CAPTURED: Final = 10_000_000  # characters written into captures, all together


class RenderState:
    """What one render wrote: the values behind its tokens, the variables it lacked."""

    __slots__ = ("captured", "capturing", "missing", "values")

    def __init__(self) -> None:
        self.values: list[str] = []
        self.missing: dict[str, None] = {}
        self.capturing = 0  # how many captures are being written (they nest)
        self.captured = 0  # characters written into them so far


RENDERING: ContextVar[RenderState] = ContextVar("prompt_middleware_jinja_render")


class _Undefined(ChainableUndefined):
    """Empty, and noted as missing when a variable that was not given is written out."""

    __slots__ = ()

    def __str__(self) -> str:
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()
        if self._undefined_obj is missing and self._undefined_name is not None:
            RENDERING.get().missing[self._undefined_name] = None
        return ""

    def __getattr__(self, name: str) -> Any:
        # A chain that began with an attribute the sandbox refused stays refused.
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()
        return super().__getattr__(name)

    __getitem__ = __getattr__


class TooLarge(Exception):
    """A render would build a value, or messages, too large to be a prompt's."""


@pass_eval_context
def _finalize(_: EvalContext, value: Any) -> str:
    # pass_eval_context keeps Jinja from finalizing constants at compile time: every output,
    # literal or not, comes here per render.
    if isinstance(value, Undefined):
        return str(value)
    if value is None:
        return ""  # as our {{variable}} substitution (and Langfuse's) writes None
    text = value if type(value) is str else str(value)
    if not text:
        return ""
    state = RENDERING.get()
    if state.capturing:
        state.captured += len(text)
        if state.captured > _MAX_CAPTURED:
            raise TooLarge(f"the template captures more than {_MAX_CAPTURED} characters")
        return text
    values = state.values
    values.append(text)
    if len(values) > _MAX_WRITTEN:
        raise TooLarge(f"the template writes more than {_MAX_WRITTEN} values")
    return f"{_TOKEN_PREFIX}{len(values) - 1}\ue001"


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    # Called around every capture; only compiled-in nodes reach them (see captures.py).
    def capture_start(self) -> str:
        RENDERING.get().capturing += 1
        return ""

    def capture_end(self) -> str:
        RENDERING.get().capturing -= 1
        return ""

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            if _repeats_too_much(left, right) or _repeats_too_much(right, left):
                raise TooLarge(f"'*' would make more than {_MAX_REPEATED_LENGTH} items")
        elif _int_power(left, right) and left.bit_length() * right > _MAX_POWER_BITS:
            raise TooLarge(f"'**' would make a number of more than {_MAX_POWER_BITS} bits")
        return super().call_binop(context, operator, left, right)


def _repeats_too_much(sequence: Any, count: Any) -> bool:
    return (
        isinstance(sequence, str | list | tuple)
        and isinstance(count, int)
        and len(sequence) * count > _MAX_REPEATED_LENGTH
    )


def _int_power(base: Any, exponent: Any) -> bool:
    return isinstance(base, int) and isinstance(exponent, int) and exponent > 0


# No autoescape, no trim_blocks / lstrip_blocks: the text is sent as written. A final newline
# is kept, so that a message rendered on its own is exactly its template's text.
ENVIRONMENT: Final = _Sandbox(
    autoescape=False, undefined=_Undefined, finalize=_finalize, keep_trailing_newline=True
)
