"""What the sidecar's metrics are called and mean: one description each, read by both
collectors (:class:`~prompt_middleware.sidecar.metrics.PrometheusMetrics` for one worker,
:class:`~prompt_middleware.sidecar.shared_metrics.SharedMetrics` summed over several)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "CACHE",
    "CACHE_RESULTS",
    "CONTROL_FALLBACKS",
    "EXPERIMENT_REQUESTS",
    "LATENCY_BUCKETS",
    "OVERHEAD",
    "OVERHEAD_BUCKETS",
    "REDIS_UP",
    "REQUESTS",
    "SPANS_DROPPED",
    "STATUS_CLASSES",
    "STORE_FETCH",
    "TOKEN_KINDS",
    "UPSTREAM",
    "VARIANT_DURATION",
    "VARIANT_FIRST_TOKEN",
    "VARIANT_RESPONSES",
    "VARIANT_TOKENS",
    "VARIANT_UPSTREAM",
    "MetricName",
    "status_class",
]


@dataclass(frozen=True, slots=True)
class MetricName:
    """A metric's name (without ``_total``), its help text and its label names."""

    name: str
    help: str
    labels: tuple[str, ...] = ()


# Sub-millisecond buckets: the middleware's overhead is measured in microseconds.
OVERHEAD_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CACHE_RESULTS: Final = ("hit", "miss", "stale")
TOKEN_KINDS: Final = ("input", "output")
STATUS_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """``2xx`` for 200 to 299, and so on (a status outside 100 to 599 counts as ``5xx``)."""
    index = status // 100 - 1
    return STATUS_CLASSES[index] if 0 <= index < len(STATUS_CLASSES) else "5xx"


REQUESTS: Final = MetricName(
    "prompt_middleware_requests",
    "Requests on the middleware's routes, by route and status.",
    ("route", "status"),
)
CACHE: Final = MetricName(
    "prompt_middleware_prompt_cache",
    "Managed requests by how the prompt cache served them (hit, miss, stale).",
    ("result",),
)
OVERHEAD: Final = MetricName(
    "prompt_middleware_overhead_seconds",
    "Time spent in the middleware per request, upstream excluded.",
)
STORE_FETCH: Final = MetricName(
    "prompt_middleware_store_fetch_seconds",
    "Prompt store calls (cache misses and refreshes), by store and outcome.",
    ("store", "outcome"),
)
UPSTREAM: Final = MetricName(
    "prompt_middleware_upstream_seconds",
    "Time until the upstream's response headers, by status.",
    ("status",),
)
REDIS_UP: Final = MetricName(
    "prompt_middleware_redis_up",
    "1 while Redis answers this replica's pings, 0 while it does not.",
)
EXPERIMENT_REQUESTS: Final = MetricName(
    "prompt_middleware_experiment_requests",
    "Requests of an experiment, by the variant served (as x-prompt-variant shows it).",
    ("experiment", "variant"),
)
CONTROL_FALLBACKS: Final = MetricName(
    "prompt_middleware_experiment_control_fallbacks",
    "Requests whose variant could not be served (not found, store down), so the "
    "experiment's control was.",
    ("experiment", "variant"),
)
SPANS_DROPPED: Final = MetricName(
    "prompt_middleware_trace_spans_dropped",
    "Request spans dropped because the trace export queue was full (0 with traces off).",
)

# Per experiment and variant (README, "Dashboard"): label values come from the config file.
_VARIANT: Final = ("experiment", "variant")
VARIANT_UPSTREAM: Final = MetricName(
    "prompt_middleware_variant_upstream_seconds",
    "Requests of an experiment: time from calling the upstream until its response headers.",
    _VARIANT,
)
VARIANT_FIRST_TOKEN: Final = MetricName(
    "prompt_middleware_variant_first_token_seconds",
    "Streamed requests of an experiment: time from arrival until the first non-empty text delta.",
    _VARIANT,
)
VARIANT_DURATION: Final = MetricName(
    "prompt_middleware_variant_duration_seconds",
    "Requests of an experiment: time from arrival until the answer's last byte.",
    _VARIANT,
)
VARIANT_TOKENS: Final = MetricName(
    "prompt_middleware_variant_tokens",
    "Tokens of an experiment's answers (input, output), from the answers' usage.",
    (*_VARIANT, "kind"),
)
VARIANT_RESPONSES: Final = MetricName(
    "prompt_middleware_variant_responses",
    "Answers of an experiment's requests, by status class (2xx, 4xx, 5xx).",
    (*_VARIANT, "status"),
)
