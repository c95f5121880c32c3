"""Text a template captures holds its values as they are; it is written out as one value.

Outside a capture, ``{{ expression }}`` writes a token in place of its value (see
:mod:`prompt_middleware.jinja.sandbox`), so that role markers are found in the template's own
text only. A capture — a ``{% set %}`` block, a macro, a ``{% call %}`` block's ``caller()``,
a ``{% filter %}`` block — is text the template then works on (``{{ m(x) | upper }}``,
``{% if answer == "yes" %}``): there a token would be uppercased or compared instead of its
value. So each capture is bracketed, when the template is compiled, by calls that tell the
renderer to write values as they are, and the two captures whose text Jinja would write into
the output directly (``{% filter %}`` and ``{% call %}`` blocks) are rewritten into a
``{% set %}`` block followed by ``{{ its name }}`` (``{{ its name | the filter }}``): what a
capture holds always reaches the output as one value, behind one token, so a value inside it
still never makes a role.
"""

from __future__ import annotations

import itertools
from typing import Any

from jinja2 import nodes
from jinja2.visitor import NodeTransformer

__all__ = ["CAPTURE_END", "CAPTURE_START", "bracket_captures"]

# Methods of the sandboxed environment, reached through a node the parser never makes, so a
# template cannot call them itself.
CAPTURE_START = "capture_start"
CAPTURE_END = "capture_end"


def bracket_captures(tree: nodes.Template) -> nodes.Template:
    """``tree`` with every capture bracketed and written out as one value."""
    return _Captures().visit(tree)  # type: ignore[no-any-return]


class _Captures(NodeTransformer):
    def __init__(self) -> None:
        self._names = (f"_captured_{n}" for n in itertools.count())

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        self.generic_visit(node)
        node.body = _bracketed(node.body, node.lineno)
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        self.generic_visit(node)
        node.body = _bracketed(node.body, node.lineno)
        return node

    def visit_CallBlock(self, node: nodes.CallBlock) -> list[nodes.Node]:
        self.generic_visit(node)
        node.body = _bracketed(node.body, node.lineno)  # what caller() returns
        return self._written_once([node], None, node.lineno)

    def visit_FilterBlock(self, node: nodes.FilterBlock) -> list[nodes.Node]:
        self.generic_visit(node)
        return self._written_once(node.body, node.filter, node.lineno)

    def _written_once(
        self, body: list[nodes.Node], applied: nodes.Filter | None, lineno: int
    ) -> list[nodes.Node]:
        name = next(self._names)
        target = nodes.Name(name, "store", lineno=lineno)
        captured = nodes.AssignBlock(target, None, _bracketed(body, lineno), lineno=lineno)
        written: nodes.Expr = nodes.Name(name, "load", lineno=lineno)
        if applied is not None:
            # The filter is applied where the text is written, not in the {% set %} block:
            # Jinja cannot resolve a variable in a filtered {% set %} block's arguments.
            innermost = applied
            while isinstance(innermost.node, nodes.Filter):
                innermost = innermost.node
            innermost.node = written
            written = applied
        return [captured, nodes.Output([written], lineno=lineno)]


def _bracketed(body: list[nodes.Node], lineno: int) -> list[Any]:
    return [_call(CAPTURE_START, lineno), *body, _call(CAPTURE_END, lineno)]


def _call(method: str, lineno: int) -> nodes.Output:
    function = nodes.EnvironmentAttribute(method, lineno=lineno)
    return nodes.Output([nodes.Call(function, [], [], None, None, lineno=lineno)], lineno=lineno)
