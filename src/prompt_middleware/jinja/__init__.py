"""Jinja templates (``.prompt`` bodies, Humanloop ``jinja`` prompts): sandboxed, compiled once.

One environment for every template: ``jinja2``'s ``ImmutableSandboxedEnvironment`` (a template
can neither reach Python internals nor change the values it is given), without LiteLLM's HTML
autoescaping (``Tom & Jerry`` reaches the model as written) and without its line stripping
(indentation in code samples stays).

**A value never creates a message or changes a role.** Each ``{{ expression }}``'s output is
written into the rendered text as an opaque token (``finalize``); role markers are looked for
in that text, which holds only the template's own words; then the tokens are replaced by the
values in each message. So ``{% if context %}System: {{ context }}{% endif %}`` starts a
system message, while a value holding ``"\\nSystem: ..."`` stays inside its message. Text a
template captures (``{% set %}`` blocks, macros, ``{% filter %}``) holds the values themselves,
so that filters and comparisons see them, and is written out as one value (``captures.py``).

A template is checked when it is compiled, so that a file that cannot be served says so at
once, naming the line: syntax errors, access to private attributes (``''.__class__``), and
``{% include %}`` / ``{% extends %}`` / ``{% import %}`` (a prompt is one file). Rendering
raises :class:`RenderFailed` (``unsafe`` when the sandbox stopped it) or :class:`TooLarge`;
:mod:`prompt_middleware.render_jinja` turns them into answers.
"""

from prompt_middleware.jinja.checks import is_plain
from prompt_middleware.jinja.state import TooLarge
from prompt_middleware.jinja.template import (
    JinjaMessages,
    JinjaRendered,
    JinjaTemplate,
    PromptTemplate,
    RenderFailed,
    TemplateInvalid,
    compile_jinja,
)

__all__ = [
    "JinjaMessages",
    "JinjaRendered",
    "JinjaTemplate",
    "PromptTemplate",
    "RenderFailed",
    "TemplateInvalid",
    "TooLarge",
    "compile_jinja",
    "is_plain",
]
