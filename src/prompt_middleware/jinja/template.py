"""Compiling a Jinja template once, and rendering it per request into messages.

A ``.prompt`` body is rendered, then split into messages at the role markers of its text,
then each token is replaced by its value (see :mod:`prompt_middleware.jinja.sandbox`), so a
value is never taken for a marker. An undefined variable is written as nothing and reported in
``missing``. What goes wrong while rendering is a :class:`RenderFailed` naming the template's
line, a :class:`~prompt_middleware.jinja.state.TooLarge` past the size limit: the caller,
who knows the prompt, turns them into answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any, Final, TypeAlias

from jinja2 import Template, TemplateSyntaxError
from jinja2.exceptions import SecurityError

from prompt_middleware.jinja.bounds import bound_concatenations
from prompt_middleware.jinja.captures import bracket_captures
from prompt_middleware.jinja.checks import Refused, check_tree, has_role_marker
from prompt_middleware.jinja.sandbox import ENVIRONMENT, OPEN, TOKEN
from prompt_middleware.jinja.state import RENDERING, RenderState, TooLarge
from prompt_middleware.roles import role_sections

__all__ = [
    "JinjaMessages",
    "JinjaRendered",
    "JinjaTemplate",
    "PromptTemplate",
    "RenderFailed",
    "TemplateInvalid",
    "compile_jinja",
]

_TEMPLATE_FILENAME: Final = "<template>"  # Jinja's name for template code in tracebacks


class TemplateInvalid(Exception):
    """A template cannot be compiled: ``reason``, at ``line`` of the template when known."""

    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.reason = reason
        self.line = line

    def describe(self, first_line: int = 1) -> str:
        """The message, its line counted from ``first_line`` (where a file's template starts)."""
        if self.line is None:
            return self.reason
        return f"line {self.line + first_line - 1}: {self.reason}"


class RenderFailed(Exception):
    """Rendering stopped at ``line``; ``unsafe`` when the sandbox stopped it (the template's
    fault), otherwise it failed on the variables it was given (the request's)."""

    def __init__(self, reason: str, line: int, *, unsafe: bool) -> None:
        super().__init__(f"line {line}: {reason}")
        self.reason = reason
        self.line = line
        self.unsafe = unsafe


@dataclass(frozen=True, slots=True)
class JinjaRendered:
    """``messages`` as (role, content); role None for a body without role markers."""

    messages: tuple[tuple[str | None, str], ...]
    missing: tuple[str, ...]


@lru_cache(maxsize=1024)
def compile_jinja(source: str, *, split_roles: bool) -> JinjaTemplate:
    """``source`` compiled, or :class:`TemplateInvalid` naming the line.

    ``split_roles``: a ``.prompt`` body, split into messages at role markers and stripped,
    as LiteLLM does; otherwise one message's content, kept as rendered. Memoised: a store that
    checks a template when it reads it, and the engine that renders it, compile it once.
    """
    try:
        tree = ENVIRONMENT.parse(source)
        check_tree(tree)
        may_split = split_roles and has_role_marker(tree)
        tree = bound_concatenations(bracket_captures(tree))
        tree.set_environment(ENVIRONMENT)
        template = ENVIRONMENT.from_string(tree)
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(exc.message or "syntax error", exc.lineno or 1) from exc
    except Refused as exc:
        raise TemplateInvalid(str(exc), exc.lineno) from exc
    except Exception as exc:  # Jinja's compiler has failures of its own; none may escape
        raise TemplateInvalid(f"Jinja cannot compile it: {exc}", None) from exc
    return JinjaTemplate(template, split_roles, may_split)


class JinjaTemplate:
    """One compiled template; :meth:`render` per request. Shared: never mutated."""

    __slots__ = ("_globals", "_may_split", "_new_context", "_root", "_split_roles")

    def __init__(self, template: Template, split_roles: bool, may_split: bool) -> None:
        # Template.render copies the globals (a ChainMap) into a new dict on every call; a
        # plain dict of them, made once, and a shared context halve the cost of a render.
        self._globals = dict(template.globals)
        self._new_context = template.new_context
        self._root = template.root_render_func
        self._split_roles = split_roles
        self._may_split = may_split

    def render(self, variables: Mapping[str, Any], limit: int | None = None) -> JinjaRendered:
        """Render with ``variables``; ``limit`` caps the characters of all messages together.

        Raises :class:`RenderFailed`, and :class:`TooLarge` past ``limit``.
        """
        state = RenderState(limit)
        reset = RENDERING.set(state)
        try:
            text = self._run(variables)
        except SecurityError as exc:
            raise RenderFailed(str(exc), _line(exc.__traceback__), unsafe=True) from None
        except Exception as exc:  # any failure of a template is answered
            raise RenderFailed(str(exc), _line(exc.__traceback__), unsafe=False) from None
        finally:
            RENDERING.reset(reset)
        fill = _filler(state.values, limit)
        sections = role_sections(text) if self._may_split else None
        if sections is None:
            content = fill(text)
            messages: tuple[tuple[str | None, str], ...] = (
                (None, content.strip() if self._split_roles else content),
            )
        else:
            found = ((role, fill(text[start:end]).strip()) for role, start, end in sections)
            messages = tuple((role, content) for role, content in found if content)
        if limit is not None and sum(len(content) for _, content in messages) > limit:
            raise TooLarge(f"the messages are larger than {limit} characters")
        return JinjaRendered(messages, tuple(state.missing))

    def _run(self, variables: Mapping[str, Any]) -> str:
        try:
            context = self._new_context({**self._globals, **variables}, shared=True)
            return "".join(self._root(context))
        except Exception:
            # Re-raised with a traceback whose template frames carry the template's lines.
            ENVIRONMENT.handle_exception()
            raise  # not reached: handle_exception always raises


class JinjaMessages:
    """A chat prompt whose messages are each a Jinja template (Humanloop's ``jinja``)."""

    __slots__ = ("_messages",)

    def __init__(self, messages: tuple[tuple[str, JinjaTemplate], ...]) -> None:
        self._messages = messages

    def render(self, variables: Mapping[str, Any], limit: int | None = None) -> JinjaRendered:
        """Each message rendered as it is, in order; see :meth:`JinjaTemplate.render`."""
        messages: list[tuple[str | None, str]] = []
        missing: dict[str, None] = {}
        for role, template in self._messages:
            rendered = template.render(variables, limit)
            content = rendered.messages[0][1]
            if limit is not None:
                limit -= len(content)
            messages.append((role, content))
            missing.update(dict.fromkeys(rendered.missing))
        return JinjaRendered(tuple(messages), tuple(missing))


PromptTemplate: TypeAlias = JinjaTemplate | JinjaMessages


def _line(traceback: TracebackType | None) -> int:
    # Jinja rewrites tracebacks so that template code shows as frames of "<template>".
    line = 1
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def _filler(values: list[str], limit: int | None) -> Callable[[str], str]:
    """Replaces the tokens of ``values`` in a text, keeping the total under ``limit``."""
    if not values:
        return _unchanged
    resolved: list[str] = []
    size = 0

    def value_of(match: re.Match[str]) -> str:
        nonlocal size
        index = int(match[1])
        if index >= len(resolved):
            return match[0]  # not one of ours: leave it as it is
        text = resolved[index]
        size += len(text)
        if limit is not None and size > limit:
            raise TooLarge(f"the messages would be larger than {limit} characters")
        return text

    for text in values:
        # A block's text written again ({{ self.name() }}) holds the tokens of its values.
        resolved.append(TOKEN.sub(value_of, text) if OPEN in text else text)
    size = 0

    def fill(text: str) -> str:
        return TOKEN.sub(value_of, text) if OPEN in text else text

    return fill


def _unchanged(text: str) -> str:
    return text
