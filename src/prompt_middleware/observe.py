"""What the middleware reports about each request, for metrics or anything else.

The library calls an :class:`Observer` when one is given and does no work otherwise; the
sidecar's Prometheus metrics are one observer.
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

__all__ = ["ExperimentAnswer", "FetchOutcome", "Observer"]

FetchOutcome = Literal["ok", "not_found", "error"]


class ExperimentAnswer(msgspec.Struct, frozen=True, gc=False):
    """How one request of an experiment was answered (README, "Dashboard").

    Seconds count from the request's arrival, except ``upstream_seconds``: from calling the
    upstream until its response headers (None when no upstream answered: our own error, an
    app that is not the forwarder). ``first_token_seconds``: until the first non-empty text
    delta of a stream (None: not a stream, or no text). Tokens are the answer's ``usage``
    (None when it had none).
    """

    experiment: str
    variant: str
    status: int
    upstream_seconds: float | None
    first_token_seconds: float | None
    duration_seconds: float
    input_tokens: int | None
    output_tokens: int | None


class Observer(Protocol):
    """Receives one call per request on a matched route and one per store fetch (and, for a
    prompt under an experiment, one per variant served, one per control fallback and one per
    answer)."""

    def request(self, route: str, status: int, cache: str | None, overhead_seconds: float) -> None:
        """A request on a matched route ended; ``cache`` is None for unmanaged requests."""

    def store_fetch(self, store: str, outcome: FetchOutcome, seconds: float) -> None:
        """The cache called a store (a miss or a refresh)."""

    def experiment_request(self, experiment: str, variant: str) -> None:
        """A request of an experiment was served ``variant`` (as ``x-prompt-variant`` says)."""

    def experiment_fallback(self, experiment: str, variant: str) -> None:
        """``variant`` could not be served (not found, store down): the control was."""

    def experiment_answer(self, answer: ExperimentAnswer) -> None:
        """A request of an experiment was answered (called once its answer is over)."""
