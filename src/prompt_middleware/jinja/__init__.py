"""Jinja templates (``.prompt`` bodies, Humanloop ``jinja`` prompts): sandboxed, compiled once.

One environment for every template: ``jinja2``'s ``ImmutableSandboxedEnvironment`` (a template
can neither reach Python internals nor change the values it is given), without LiteLLM's HTML
autoescaping (``Tom & Jerry`` reaches the model as written) and without its line stripping
(indentation in code samples stays).

**A value never creates a message or changes a role.** Each ``{{ expression }}``'s output is
written into the rendered text as an opaque token (``finalize``); role markers are looked for
in that text, which holds only the template's own words; then the tokens are replaced by the
values in each message. So ``{% if context %}System: {{ context }}{% endif %}`` starts a
system message, while a value holding ``"\\nSystem: ..."`` stays inside its message.

A template is checked when it is compiled, so that a file that cannot be served says so at
once, naming the line: syntax errors, access to private attributes (``''.__class__``),
``{% include %}`` / ``{% extends %}`` / ``{% import %}`` (a prompt is one file), and a
``{% filter %}`` block whose arguments come from variables (its output bypasses the tokens).
At render time an undefined variable is empty and reported in ``missing`` (the caller warns or,
in strict mode, refuses); what the sandbox still stops is the prompt's fault, not the client's
(502); any other error is a 400 naming the line, as it depends on the variables sent.
"""

from prompt_middleware.jinja.checks import is_plain
from prompt_middleware.jinja.sandbox import TooLarge
from prompt_middleware.jinja.template import (
    JinjaMessages,
    JinjaRendered,
    JinjaTemplate,
    PromptTemplate,
    TemplateInvalid,
    compile_jinja,
)

__all__ = [
    "JinjaMessages",
    "JinjaRendered",
    "JinjaTemplate",
    "PromptTemplate",
    "TemplateInvalid",
    "TooLarge",
    "compile_jinja",
    "is_plain",
]
