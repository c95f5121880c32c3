"""The one Jinja environment: sandboxed, immutable, and writing every value as a token.

``{{ expression }}`` output goes through :func:`_finalize`, which keeps the text in the render's
state (``state.py``) and writes ``"\\ue000<nonce>:<index>\\ue001"`` in its place: private-use
characters around a per-process number, so that neither a template's text nor a value is taken
for a token. Inside a capture (:mod:`prompt_middleware.jinja.captures`) values are written as
they are, since the template works on that text; the capture then reaches the output as one
value.

Every step that could turn a client's small value into a large text — a width, a count, a
repeated or joined text, ``a ~ b`` — is checked against the render's bound before it runs
(:mod:`prompt_middleware.jinja.bounds`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any, Final

from jinja2 import pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import ChainableUndefined, Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from prompt_middleware.jinja.bounds import (
    BOUNDED_FILTERS,
    bounded_lipsum,
    bounded_str_format,
    check_method,
    concat_size,
    joined,
    printf_size,
    refuse_past,
    refuse_texts_past,
    text_size,
)
from prompt_middleware.jinja.state import MAX_CAPTURED, RENDERING, TooLarge

__all__ = ["ENVIRONMENT", "OPEN", "TOKEN"]

_NONCE: Final = str(secrets.randbelow(10**9))
OPEN: Final = "\ue000"
_TOKEN_PREFIX: Final = f"{OPEN}{_NONCE}:"
TOKEN: Final = re.compile(f"{OPEN}{_NONCE}:([0-9]+)\ue001")
# Repeated lists (``items * n``) and powers could fill memory from a small request; repeated
# text is bounded by the render's bound (bounds.py).
_MAX_REPEATED_ITEMS: Final = 1_000_000
_MAX_POWER_BITS: Final = 100_000
# Loops over a request's lists (nested, say) could write millions of values: each is kept
# until the render ends, so their number is bounded too.
_MAX_WRITTEN: Final = 100_000


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


@pass_eval_context
def _finalize(_: EvalContext, value: Any) -> str:
    # pass_eval_context keeps Jinja from finalizing constants at compile time: every output,
    # literal or not, comes here per render.
    if isinstance(value, Undefined):
        return str(value)
    if value is None:
        return ""  # as our {{variable}} substitution (and Langfuse's) writes None
    state = RENDERING.get()
    if type(value) is str:
        text = value
    else:
        refuse_past(text_size(value, state.limit), "writing a value")
        text = str(value)
    if not text:
        return ""
    if state.capturing:
        state.captured += len(text)
        if state.captured > MAX_CAPTURED:
            raise TooLarge(f"the template captures more than {MAX_CAPTURED} characters")
        return text
    values = state.values
    values.append(text)
    if len(values) > _MAX_WRITTEN:
        raise TooLarge(f"the template writes more than {_MAX_WRITTEN} values")
    return f"{_TOKEN_PREFIX}{len(values) - 1}\ue001"


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, and a bound on the text each step of a render makes (``bounds.py``)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    # Called around every capture; only compiled-in nodes reach them (see captures.py).
    def capture_start(self) -> str:
        RENDERING.get().capturing += 1
        return ""

    def capture_end(self) -> str:
        RENDERING.get().capturing -= 1
        return ""

    # What ``a ~ b`` becomes (bounds.py): the texts joined, once their size is checked.
    def concat_bounded(self, *parts: Any) -> str:
        refuse_past(concat_size(parts, RENDERING.get().limit), "'~'")
        return "".join([part if type(part) is str else str(part) for part in parts])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _refuse_repeat(left, right)
            _refuse_repeat(right, left)
        elif operator == "+":
            if isinstance(left, str) and isinstance(right, str):
                refuse_past(len(left) + len(right), "'+'")
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                _refuse_items(len(left) + len(right), "'+'")
        elif operator == "%":
            if isinstance(left, str):
                refuse_past(printf_size(left, right, RENDERING.get().limit), "'%'")
        elif _int_power(left, right) and left.bit_length() * right > _MAX_POWER_BITS:
            raise TooLarge(f"'**' would make a number of more than {_MAX_POWER_BITS} bits")
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # A text too large to write is refused before anything is made from it (a macro's
        # argument doubled at each call, say).
        refuse_texts_past(args)
        if kwargs:
            refuse_texts_past(kwargs.values())
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str | bytes | int):
            name = getattr(obj, "__name__", "")
            if name == "join" and len(args) == 1 and not isinstance(owner, int):
                args = (joined(owner, args[0]),)
            else:
                check_method(owner, name, args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        return bounded_str_format(self, value)


def _refuse_repeat(sequence: Any, count: Any) -> None:
    if not isinstance(count, int):
        return
    if isinstance(sequence, str):
        refuse_past(len(sequence) * count, "'*'")
    elif isinstance(sequence, list | tuple):
        _refuse_items(len(sequence) * count, "'*'")


def _refuse_items(count: int, what: str) -> None:
    if count > _MAX_REPEATED_ITEMS:
        raise TooLarge(f"{what} would make more than {_MAX_REPEATED_ITEMS} items")


def _int_power(base: Any, exponent: Any) -> bool:
    return isinstance(base, int) and isinstance(exponent, int) and exponent > 0


# No autoescape, no trim_blocks / lstrip_blocks: the text is sent as written. A final newline
# is kept, so that a message rendered on its own is exactly its template's text.
ENVIRONMENT: Final = _Sandbox(
    autoescape=False, undefined=_Undefined, finalize=_finalize, keep_trailing_newline=True
)
ENVIRONMENT.filters.update(BOUNDED_FILTERS)
ENVIRONMENT.globals["lipsum"] = bounded_lipsum
