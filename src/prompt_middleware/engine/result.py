"""What a rewrite gives the doors: the new body, and what the response and the log report."""

from __future__ import annotations

import msgspec

from prompt_middleware.cache import CacheStatus
from prompt_middleware.prompts import Prompt
from prompt_middleware.settings import ModelEntry

__all__ = ["RewriteResult"]


class RewriteResult(msgspec.Struct, frozen=True, kw_only=True):
    """A rewritten request: the new body and what the response headers and log report."""

    body: bytes
    model: str | None
    entry: ModelEntry | None = None
    prompt: Prompt | None = None
    store: str | None = None
    cache_status: CacheStatus | None = None
    #: The ``x-prompt-*`` headers of a managed request (none for an unmanaged one).
    headers: tuple[tuple[bytes, bytes], ...] = ()
    #: True when the rewrite had to wait for the prompt store (a miss; or an expired prompt
    #: the policy does not serve while it refreshes in the background).
    waited: bool = False
    #: The experiment that chose the prompt's variant, and the variant served (what
    #: ``x-prompt-variant`` shows: a label or ``version-<N>``); None when none applied.
    experiment_name: str | None = None
    variant_name: str | None = None
    #: The label the prompt was fetched by (None when a version was asked for).
    label: str | None = None
    #: The client's field the prompt's system text replaced (``instructions``, ``system``),
    #: named in the request's log line; None when none was.
    replaced: str | None = None
