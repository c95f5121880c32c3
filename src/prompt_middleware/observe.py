"""What the middleware reports about each request, for metrics or anything else.

The library calls an :class:`Observer` when one is given and does no work otherwise; the
sidecar's Prometheus metrics are one observer.
"""

from __future__ import annotations

from typing import Literal, Protocol

__all__ = ["FetchOutcome", "Observer"]

FetchOutcome = Literal["ok", "not_found", "error"]


class Observer(Protocol):
    """Receives one call per request on a matched route and one per store fetch (and, for a
    prompt under an experiment, one per variant served and one per control fallback)."""

    def request(self, route: str, status: int, cache: str | None, overhead_seconds: float) -> None:
        """A request on a matched route ended; ``cache`` is None for unmanaged requests."""

    def store_fetch(self, store: str, outcome: FetchOutcome, seconds: float) -> None:
        """The cache called a store (a miss or a refresh)."""

    def experiment_request(self, experiment: str, variant: str) -> None:
        """A request of an experiment was served ``variant`` (as ``x-prompt-variant`` says)."""

    def experiment_fallback(self, experiment: str, variant: str) -> None:
        """``variant`` could not be served (not found, store down): the control was."""
