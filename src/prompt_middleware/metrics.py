"""Prometheus metrics for the sidecar: an :class:`Observer` over ``prometheus_client``.

Each instance has its own registry, so several apps in one process (tests) never clash.
With several workers each worker counts its own requests; scrape them one by one or run one
worker per container.
"""

from __future__ import annotations

from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from prompt_middleware.observe import FetchOutcome

__all__ = ["CONTENT_TYPE", "PrometheusMetrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Sub-millisecond buckets: the middleware's overhead is measured in microseconds.
_OVERHEAD_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)
_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PrometheusMetrics:
    """Requests by route and status, prompt cache results, store and upstream latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "prompt_middleware_requests",
            "Requests on the middleware's routes, by route and status.",
            ("route", "status"),
            registry=self.registry,
        )
        self._cache = Counter(
            "prompt_middleware_prompt_cache",
            "Managed requests by how the prompt cache served them (hit, miss, stale).",
            ("result",),
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, int], Any] = {}
        self._cache_children = {
            result: self._cache.labels(result) for result in ("hit", "miss", "stale")
        }
        self._overhead = Histogram(
            "prompt_middleware_overhead_seconds",
            "Time spent in the middleware per request, upstream excluded.",
            buckets=_OVERHEAD_BUCKETS,
            registry=self.registry,
        )
        self._store = Histogram(
            "prompt_middleware_store_fetch_seconds",
            "Prompt store calls (cache misses and refreshes), by store and outcome.",
            ("store", "outcome"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._upstream_children: dict[int, Any] = {}  # HTTP statuses: a small set
        self._upstream = Histogram(
            "prompt_middleware_upstream_seconds",
            "Time until the upstream's response headers, by status.",
            ("status",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def request(self, route: str, status: int, cache: str | None, overhead_seconds: float) -> None:
        # labels() builds and looks up a key on every call; the few (route, status) children
        # are kept here instead. Routes are the configured ones, so this stays small.
        child = self._request_children.get((route, status))
        if child is None:
            child = self._request_children[(route, status)] = self._requests.labels(
                route, str(status)
            )
        child.inc()
        if cache is not None:
            self._cache_children[cache].inc()
        self._overhead.observe(overhead_seconds)

    def store_fetch(self, store: str, outcome: FetchOutcome, seconds: float) -> None:
        self._store.labels(store, outcome).observe(seconds)

    def upstream_response(self, status: int, seconds: float) -> None:
        child = self._upstream_children.get(status)
        if child is None:
            child = self._upstream_children[status] = self._upstream.labels(str(status))
        child.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
