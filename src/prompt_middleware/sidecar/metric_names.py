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
    "STORE_FETCH",
    "UPSTREAM",
    "MetricName",
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
