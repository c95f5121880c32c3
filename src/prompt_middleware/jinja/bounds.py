"""Text a template makes from a client's values: bounded before it is made.

``prompt_variables`` are small (``PROMPT_MIDDLEWARE_MAX_VARIABLES_BYTES``), but a template can
turn a number into text — ``"a"|center(n)``, ``"%*s"|format(n, x)``, ``"{:>{}}".format(x, n)``,
``"{:.{}f}"``, ``x.ljust(n)``, ``indent(n)``, ``tojson(indent=n)``, ``lipsum(n)`` — or multiply
the texts it combines: ``replace``, ``join``, ``translate``, ``wordwrap``'s ``wrapstring``, a
list written out. Python builds such a text in one step, so each is checked from the sizes of
its inputs before it runs: past the render's bound (``PROMPT_MIDDLEWARE_MAX_RENDERED_CHARS``)
it raises :class:`TooLarge`, and nothing was built. Anything else a template does makes at
most a few times the text it is given, and every text passed to a call is checked too
(``sandbox.py``), so no text grows unchecked from one step to the next.

The sizes are upper bounds, close enough that what fits in a prompt is never refused.
"""

from __future__ import annotations

import builtins
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import update_wrapper
from typing import Any, Final

from jinja2 import nodes, pass_environment, pass_eval_context
from jinja2.environment import Environment
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.nodes import EvalContext
from jinja2.sandbox import MAX_RANGE, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import generate_lorem_ipsum
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from prompt_middleware.jinja.state import RENDERING, TooLarge

__all__ = [
    "BOUNDED_FILTERS",
    "CONCAT",
    "bound_concatenations",
    "bounded_lipsum",
    "bounded_str_format",
    "check_method",
    "concat_size",
    "format_field_size",
    "joined",
    "printf_size",
    "refuse_past",
    "refuse_texts_past",
    "text_size",
]

# A width or precision written with more digits is past any bound (and int() would refuse
# more than 4300 of them).
_MOST_DIGITS: Final = 12
_HUGE: Final = sys.maxsize
# What a number adds to a field beyond its precision: a float's integer digits (1e308 has
# 309), sign, point, exponent.
_NUMBER_CHARS: Final = 330
_WIDTH_METHODS: Final = frozenset({"center", "ljust", "rjust", "zfill"})
_PRINTF: Final = re.compile(r"%(?:\(([^)]*)\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)?", re.S)
# [[fill]align][sign][z][#][0][width][grouping][.precision][type] (Python's format spec).
_FORMAT_SPEC: Final = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d*))?.?", re.S)
_END: Final = object()
# The sandbox's method that ``~`` becomes; reached through a node the parser never makes.
CONCAT: Final = "concat_bounded"


def refuse_past(size: int, what: str) -> None:
    """Raise :class:`TooLarge` when ``size`` characters are past the render's bound."""
    limit = RENDERING.get().limit
    if size > limit:
        raise TooLarge(f"{what} would make more than {limit} characters")


def refuse_texts_past(values: Iterable[Any]) -> None:
    """Raise :class:`TooLarge` when one of ``values`` is a text past the render's bound."""
    limit = RENDERING.get().limit
    for value in values:
        if isinstance(value, str | bytes) and len(value) > limit:
            raise TooLarge(f"a value of more than {limit} characters was made")


def text_size(value: Any, budget: int) -> int:
    """About the most characters ``str(value)`` has, counted no further than past ``budget``.

    Containers are walked (a list written out is the text of all its items), one item at a
    time: a list holding one long text a million times is refused after a few items.
    """
    if isinstance(value, str):
        return len(value)
    size = 0
    stack: list[Iterator[Any]] = [iter((value,))]
    while stack and size <= budget:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, str):
            size += len(item) + 2  # quoted
        elif isinstance(item, bytes):
            size += 4 * len(item) + 3  # \xNN escapes
        elif isinstance(item, Mapping):
            size += 2 + 4 * len(item)
            stack.append(iter(item.items()))
        elif isinstance(item, list | tuple | set | frozenset):
            size += 2 + 2 * len(item)
            stack.append(iter(item))
        elif isinstance(item, bool) or item is None:
            size += 5
        elif isinstance(item, int):
            size += item.bit_length() // 3 + 2
        else:
            size += 32  # a float, or an object whose text is its own
    return size


def concat_size(parts: tuple[Any, ...], budget: int) -> int:
    """About the most characters ``a ~ b ~ …`` makes, counted no further than past ``budget``."""
    size = 0
    for part in parts:
        if size > budget:
            break
        size += text_size(part, budget)
    return size


def bound_concatenations(tree: nodes.Template) -> nodes.Template:
    """``tree`` with each ``a ~ b`` a call of the sandbox's :data:`CONCAT` method, which checks
    the size first (Jinja would join the texts at once)."""
    return _Concatenations().visit(tree)  # type: ignore[no-any-return]


class _Concatenations(NodeTransformer):
    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        function = nodes.EnvironmentAttribute(CONCAT, lineno=node.lineno)
        return nodes.Call(function, list(node.nodes), [], None, None, lineno=node.lineno)


def printf_size(template: str, args: Any, budget: int) -> int:
    """About the most characters ``template % args`` makes, counted no further than past
    ``budget``; Python itself refuses what does not fit the conversions."""
    positional = args if isinstance(args, tuple) else (args,)
    named = args if isinstance(args, Mapping) else None
    taken = 0

    def take() -> Any:
        nonlocal taken
        taken += 1
        return positional[taken - 1] if taken <= len(positional) else None

    size = len(template)
    for match in _PRINTF.finditer(template):
        name, width, precision, conversion = match.groups()
        if conversion is None or conversion == "%":
            continue
        width_value = take() if width == "*" else _number(width)
        precision_value = take() if precision == "*" else _number(precision)
        value = named.get(name) if name is not None and named is not None else take()
        size += _field_size(value, conversion in "rsa", width_value, precision_value, budget)
        if size > budget:
            break
    return size


def _field_size(value: Any, as_text: bool, width: Any, precision: Any, budget: int) -> int:
    size = text_size(value, budget)
    if isinstance(precision, int) and precision >= 0:
        size = min(size, precision) if as_text else size + precision + _NUMBER_CHARS
    return max(size, width if isinstance(width, int) else 0)


def _number(digits: str | None) -> int | None:
    if not digits:
        return None
    return int(digits) if len(digits) <= _MOST_DIGITS else _HUGE


def format_field_size(value: Any, spec: str, budget: int) -> int:
    """About the most characters ``format(value, spec)`` makes."""
    match = _FORMAT_SPEC.fullmatch(spec)
    if match is None:
        return text_size(value, budget)  # no spec Python accepts for a client's values
    width, precision = _number(match[1]), _number(match[2])
    return _field_size(value, isinstance(value, str), width, precision, budget)


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, each field checked before it is formatted; the fields of
    one call are counted together (a format string may be a client's text of many fields)."""

    _made = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._made = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        self._made += format_field_size(value, format_spec, RENDERING.get().limit)
        refuse_past(self._made, "str.format")
        return super().format_field(value, format_spec)


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


def bounded_str_format(env: Environment, value: Any) -> Callable[..., str] | None:
    """What the sandbox's ``wrap_str_format`` gives for ``str.format``/``format_map``, with a
    formatter that checks each field's size first; None for any other value."""
    name = getattr(value, "__name__", None)
    owner = getattr(value, "__self__", None)
    if name not in ("format", "format_map") or not isinstance(owner, str):
        return None
    formatter: _BoundedFormatter
    if isinstance(owner, Markup):
        formatter = _BoundedEscapeFormatter(env, escape=owner.escape)
    else:
        formatter = _BoundedFormatter(env)
    text_type = type(owner)

    def wrapper(*args: Any, **kwargs: Any) -> str:
        if name == "format_map":
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            kwargs, args = args[0], ()
        return text_type(formatter.vformat(owner, args, kwargs))

    return update_wrapper(wrapper, value)


def check_method(owner: Any, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a call of ``owner.name(*args, **kwargs)`` (a text's or a number's method) that
    would make more than the render's bound."""
    if isinstance(owner, str | bytes):
        if name in _WIDTH_METHODS:
            width = _argument(args, kwargs, 0, "width", 0)
            if isinstance(width, int):
                refuse_past(width, f"{name}()")
        elif name == "expandtabs":
            tabsize = _argument(args, kwargs, 0, "tabsize", 8)
            if isinstance(tabsize, int):
                tab: Any = "\t" if isinstance(owner, str) else b"\t"
                refuse_past(len(owner) + owner.count(tab) * tabsize, "expandtabs()")
        elif name == "replace" and len(args) >= 2:
            count = _argument(args, kwargs, 2, "count", -1)
            refuse_past(_replaced_size(owner, args[0], args[1], count), "replace()")
        elif name == "translate" and args and isinstance(args[0], Mapping):
            longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
            refuse_past(len(owner) * max(longest, 1), "translate()")
    elif isinstance(owner, int) and name == "to_bytes":
        length = _argument(args, kwargs, 0, "length", 1)
        if isinstance(length, int):
            refuse_past(4 * length, "to_bytes()")


def joined(separator: Any, items: Iterable[Any]) -> list[Any]:
    """``items`` as a list, refused when joining them with ``separator`` is past the bound."""
    listed = list(items)
    limit = RENDERING.get().limit
    size = len(separator) * max(len(listed) - 1, 0) if isinstance(separator, str) else 0
    for item in listed:
        if size > limit:
            break
        size += text_size(item, limit)
    refuse_past(size, "join")
    return listed


def _argument(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], at: int, name: str, default: Any
) -> Any:
    return args[at] if len(args) > at else kwargs.get(name, default)


def _replaced_size(text: Any, old: Any, new: Any, count: Any) -> int:
    """The length of ``text.replace(old, new, count)``, without making it."""
    kind = str if isinstance(text, str) else bytes
    if not (isinstance(old, kind) and isinstance(new, kind)):
        return len(text)  # Python refuses it
    occurrences = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        occurrences = min(occurrences, count)
    return len(text) + occurrences * (len(new) - len(old))


# The filters that turn a number into text or multiply texts, each checked first; the rest
# make at most a few times their input.


def _center(value: Any, width: Any = 80) -> Any:
    if isinstance(width, int):
        refuse_past(width, "center")
    return DEFAULT_FILTERS["center"](value, width)


def _indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
    prefix = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    if isinstance(s, str):
        refuse_past(len(s) + (s.count("\n") + 1) * prefix, "indent")
    return DEFAULT_FILTERS["indent"](s, width, first, blank)


@pass_environment
def _wordwrap(
    environment: Environment,
    s: Any,
    width: Any = 79,
    break_long_words: bool = True,
    wrapstring: Any = None,
    break_on_hyphens: bool = True,
) -> Any:
    if isinstance(s, str) and isinstance(width, int) and width > 0:
        # Greedy wrapping: two lines in a row hold more than ``width`` characters.
        lines = min(len(s) + 1, 2 * len(s) // width + s.count("\n") + 1)
        between = wrapstring if isinstance(wrapstring, str) else environment.newline_sequence
        refuse_past(len(s) + lines * len(between), "wordwrap")
    return DEFAULT_FILTERS["wordwrap"](
        environment, s, width, break_long_words, wrapstring, break_on_hyphens
    )


def _format(value: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(value, str):
        refuse_past(printf_size(value, kwargs or args, RENDERING.get().limit), "format")
    return DEFAULT_FILTERS["format"](value, *args, **kwargs)


@pass_eval_context
def _replace(eval_ctx: EvalContext, s: Any, old: Any, new: Any, count: Any = None) -> Any:
    limit = RENDERING.get().limit
    for part in (s, old, new):
        refuse_past(text_size(part, limit), "replace")
    text, before, after = str(s), str(old), str(new)
    refuse_past(_replaced_size(text, before, after, -1 if count is None else count), "replace")
    return DEFAULT_FILTERS["replace"](eval_ctx, s, old, new, count)


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: Any = None) -> Any:
    return DEFAULT_FILTERS["join"](eval_ctx, joined(d, value), d, attribute)


def _refuse_items(count: Any, what: str) -> None:
    if isinstance(count, int) and count > MAX_RANGE:
        raise TooLarge(f"{what} would make more than {MAX_RANGE} items")


def _batch(value: Any, linecount: Any, fill_with: Any = None) -> Any:
    _refuse_items(linecount, "batch")
    return DEFAULT_FILTERS["batch"](value, linecount, fill_with)


def _slice(value: Any, slices: Any, fill_with: Any = None) -> Any:
    _refuse_items(slices, "slice")
    return DEFAULT_FILTERS["slice"](value, slices, fill_with)


def _written(name: str) -> Callable[[Any], Any]:
    def write(value: Any, *args: Any, **kwargs: Any) -> Any:
        refuse_past(text_size(value, RENDERING.get().limit), name)
        return DEFAULT_FILTERS[name](value, *args, **kwargs)

    return write


@pass_eval_context
def _tojson(eval_ctx: EvalContext, value: Any, indent: Any = None) -> Any:
    limit = RENDERING.get().limit
    # Every character may become a \uXXXX escape; with an indent, every item its own line.
    size = 6 * text_size(value, limit)
    if isinstance(indent, int) and indent > 0:
        size += _items(value, limit) * (indent * _depth(value) + 1)
    refuse_past(size, "tojson")
    return DEFAULT_FILTERS["tojson"](eval_ctx, value, indent)


def _items(value: Any, budget: int) -> int:
    count, stack = 0, [value]
    while stack and count <= budget:
        item = stack.pop()
        count += 1
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return count


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, Mapping | list | tuple)
            for child in (item.values() if isinstance(item, Mapping) else item)
            if isinstance(child, Mapping | list | tuple)
        ]
    return depth


def bounded_lipsum(n: Any = 5, html: bool = True, min: Any = 20, max: Any = 100) -> Any:
    """Jinja's ``lipsum`` global, refused past the bound: a word is at most 16 characters."""
    if isinstance(n, int) and isinstance(max, int) and isinstance(min, int):
        refuse_past(n * builtins.max(min, max, 1) * 16, "lipsum")
    return generate_lorem_ipsum(n, html, min, max)


BOUNDED_FILTERS: Final[dict[str, Callable[..., Any]]] = {
    "batch": _batch,
    "center": _center,
    "format": _format,
    "indent": _indent,
    "join": _join,
    "pprint": _written("pprint"),
    "replace": _replace,
    "slice": _slice,
    "string": _written("string"),
    "tojson": _tojson,
    "wordwrap": _wordwrap,
}
