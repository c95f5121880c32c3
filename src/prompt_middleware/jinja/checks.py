"""What is decided about a template before it runs: refused constructs, plainness, roles.

Checked when a template is compiled, so that a file that cannot be served says so at once,
naming the line: access to private attributes (``''.__class__``; the sandbox would stop it at
render, but a prompt that can never render is better refused when it is read), and
``{% include %}`` / ``{% extends %}`` / ``{% import %}`` (a prompt is one file; there is no
loader).
"""

from __future__ import annotations

import re
from typing import Any, Final

from jinja2 import nodes

from prompt_middleware.jinja.sandbox import ENVIRONMENT
from prompt_middleware.roles import ROLE_WORD

__all__ = ["Refused", "check_tree", "has_role_marker", "is_plain"]

_UNSAFE_NAMES: Final = frozenset(
    {"mro", "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_code", "ag_frame"}
)
_PLAIN_VARIABLE: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Names Jinja reads as something other than a variable.
_JINJA_WORDS: Final = frozenset({"true", "false", "none", "True", "False", "None", "self"})


def is_plain(source: str) -> bool:
    """True when ``source`` has no Jinja beyond ``{{ name }}`` variables.

    Such a template renders the same through the plain ``{{variable}}`` substitution, which
    costs nothing new per request; only a template with logic needs Jinja.
    """
    for match in _PLAIN_VARIABLE.finditer(source):
        if match[1] in _JINJA_WORDS or match[1] in ENVIRONMENT.globals:
            return False
    rest = _PLAIN_VARIABLE.sub("", source)
    return "{{" not in rest and "{%" not in rest and "{#" not in rest


def has_role_marker(tree: nodes.Template) -> bool:
    # A role marker can only come from the template's own text (a value's text is a token by
    # the time roles are looked for): without one in any literal, no render needs the search.
    texts: list[Any] = [node.data for node in tree.find_all(nodes.TemplateData)]
    texts += [node.value for node in tree.find_all(nodes.Const)]
    return any(isinstance(text, str) and ROLE_WORD.search(text) for text in texts)


class Refused(Exception):
    """A construct the template may not use, and its line."""

    def __init__(self, message: str, lineno: int) -> None:
        super().__init__(message)
        self.lineno = lineno


def check_tree(tree: nodes.Template) -> None:
    """Refuse, before anything runs, what the sandbox would stop or a prompt cannot use."""
    for statement in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        tag = type(statement).__name__.lower().replace("fromimport", "from ... import")
        raise Refused(f"{{% {tag} %}} is not supported: a prompt is one file", statement.lineno)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name: Any = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif (
            isinstance(node, nodes.Filter)
            and node.name == "attr"
            and node.args
            and isinstance(node.args[0], nodes.Const)
        ):
            name = node.args[0].value
        if isinstance(name, str) and (name.startswith("_") or name in _UNSAFE_NAMES):
            raise Refused(f"the sandbox forbids access to attribute {name!r}", node.lineno)
