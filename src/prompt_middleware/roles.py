"""Role markers in a prompt body: where ``System:`` / ``User:`` / ``Assistant:`` sections are.

The one reading of LiteLLM's dotprompt role markers, shared by the ``.prompt`` file parser and
the Jinja renderer: a marker is one of the three words (any case), followed by ``:``, at the
start of a line (spaces and tabs before it allowed). A section runs from its marker to the next
one. Text before the first marker belongs to a ``user`` message, as in LiteLLM.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["ROLE_MARKER", "ROLE_WORD", "Section", "role_sections"]

ROLE_MARKER: Final = re.compile(r"^[ \t]*(system|user|assistant):", re.IGNORECASE | re.MULTILINE)
# The marker's word anywhere: text without it cannot hold a marker, wherever it ends up.
ROLE_WORD: Final = re.compile(r"(system|user|assistant):", re.IGNORECASE)

# (role, start, end): the section's text is ``body[start:end]``, its marker excluded.
Section = tuple[str, int, int]


def role_sections(body: str) -> list[Section] | None:
    """The role sections of ``body``, in order; None when it has no marker (a text prompt).

    Sections are returned unstripped and may be empty: what to do with whitespace and empty
    sections is the caller's choice (a file is checked once; a rendered body per request).
    """
    markers = list(ROLE_MARKER.finditer(body))
    if not markers:
        return None
    sections: list[Section] = []
    first = markers[0].start()
    if first:
        sections.append(("user", 0, first))
    ends = [marker.start() for marker in markers[1:]] + [len(body)]
    for marker, end in zip(markers, ends, strict=True):
        sections.append((marker[1].lower(), marker.end(), end))
    return sections
