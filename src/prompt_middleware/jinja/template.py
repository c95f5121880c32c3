"""Compiling a Jinja template once, and rendering it per request into messages.

A ``.prompt`` body is rendered, then split into messages at the role markers of its text,
then each token is replaced by its value (see :mod:`prompt_middleware.jinja.sandbox`), so a
value is never taken for a marker. At render time an undefined variable is empty and reported
in ``missing`` (the caller warns or, in strict mode, refuses); what the sandbox still stops is
the prompt's fault, not the client's (502 ``prompt_store_unavailable``, logged); any other error
is a 400 ``invalid_prompt_request`` naming the line, as it depends on the variables sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeAlias

import structlog
from jinja2 import Template, TemplateSyntaxError
from jinja2.exceptions import SecurityError

from prompt_middleware.errors import InvalidPromptRequest, PromptStoreUnavailable
from prompt_middleware.jinja.captures import bracket_captures
from prompt_middleware.jinja.checks import Refused, check_tree, has_role_marker
from prompt_middleware.jinja.sandbox import (
    ENVIRONMENT,
    OPEN,
    RENDERING,
    TOKEN,
    RenderState,
    TooLarge,
)
from prompt_middleware.roles import role_sections

__all__ = [
    "JinjaMessages",
    "JinjaRendered",
    "JinjaTemplate",
    "PromptTemplate",
    "TemplateInvalid",
    "compile_jinja",
]

_log = structlog.get_logger(__name__)

_TEMPLATE_FILENAME: Final = "<template>"  # Jinja's name for template code in tracebacks


class TemplateInvalid(Exception):
    """A template cannot be served; the message names the line (of the file, when given)."""


@dataclass(frozen=True, slots=True)
class JinjaRendered:
    """``messages`` as (role, content); role None for a body without role markers."""

    messages: tuple[tuple[str | None, str], ...]
    missing: tuple[str, ...]


def compile_jinja(
    source: str, *, origin: str, split_roles: bool, first_line: int = 1
) -> JinjaTemplate:
    """Compile ``source``, or raise :class:`TemplateInvalid` naming the line.

    ``origin`` names the template in render errors (a file path, a prompt name).
    ``first_line`` is the file line ``source`` starts on (after a front matter).
    ``split_roles``: a ``.prompt`` body, split into messages at role markers and stripped,
    as LiteLLM does; otherwise one message's content, kept as rendered.
    """
    try:
        tree = ENVIRONMENT.parse(source)
        check_tree(tree)
        tree = bracket_captures(tree)
        tree.set_environment(ENVIRONMENT)
        template = ENVIRONMENT.from_string(tree)
    except TemplateSyntaxError as exc:
        line = (exc.lineno or 1) + first_line - 1
        raise TemplateInvalid(f"line {line}: {exc.message}") from exc
    except Refused as exc:
        line = exc.lineno + first_line - 1
        raise TemplateInvalid(f"line {line}: {exc}") from exc
    except Exception as exc:  # Jinja's compiler has failures of its own; none may escape
        raise TemplateInvalid(f"Jinja cannot compile it: {exc}") from exc
    may_split = split_roles and has_role_marker(tree)
    return JinjaTemplate(template, origin, split_roles, may_split, first_line)


class JinjaTemplate:
    """One compiled template; :meth:`render` per request. Shared: never mutated."""

    __slots__ = (
        "_first_line",
        "_globals",
        "_may_split",
        "_new_context",
        "_origin",
        "_root",
        "_split_roles",
    )

    def __init__(
        self, template: Template, origin: str, split_roles: bool, may_split: bool, first_line: int
    ) -> None:
        # Template.render copies the globals (a ChainMap) into a new dict on every call; a
        # plain dict of them, made once, and a shared context halve the cost of a render.
        self._globals = dict(template.globals)
        self._new_context = template.new_context
        self._root = template.root_render_func
        self._origin = origin
        self._split_roles = split_roles
        self._may_split = may_split
        self._first_line = first_line

    def render(self, variables: Mapping[str, Any], limit: int | None = None) -> JinjaRendered:
        """Render with ``variables``; ``limit`` caps the characters of all messages together.

        Raises :class:`InvalidPromptRequest` (400) when rendering fails on these variables,
        :class:`PromptStoreUnavailable` (502) when the sandbox stops the template, and
        :class:`TooLarge` when the messages would be larger than ``limit`` (the caller
        answers it as the plain renderer does).
        """
        state = RenderState()
        reset = RENDERING.set(state)
        try:
            text = self._run(variables)
        except SecurityError as exc:
            line = self._line(exc.__traceback__)
            _log.warning(
                "prompt_template_unsafe", template=self._origin, line=line, reason=str(exc)
            )
            raise PromptStoreUnavailable(
                f"{self._origin} cannot be rendered: line {line}: the sandbox stopped it ({exc})"
            ) from None
        except Exception as exc:  # any failure of a template is answered
            line = self._line(exc.__traceback__)
            raise InvalidPromptRequest(
                f"{self._origin} cannot be rendered with these prompt_variables: "
                f"line {line}: {exc}",
                param="prompt_variables",
            ) from None
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

    def _line(self, traceback: TracebackType | None) -> int:
        # Jinja rewrites tracebacks so that template code shows as frames of "<template>".
        line = 1
        while traceback is not None:
            if traceback.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
                line = traceback.tb_lineno
            traceback = traceback.tb_next
        return line + self._first_line - 1


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
        # A {% set %} block's text holds the tokens of the values written inside it.
        resolved.append(TOKEN.sub(value_of, text) if OPEN in text else text)
    size = 0

    def fill(text: str) -> str:
        return TOKEN.sub(value_of, text) if OPEN in text else text

    return fill


def _unchanged(text: str) -> str:
    return text
