"""The sidecar's metrics across ``--workers N``: prometheus-client's multiprocess mode.

``prompt-middleware serve --workers N`` names a fresh directory in ``PROMETHEUS_MULTIPROC_DIR``
before the workers start. Each worker then counts in memory-mapped files there, and a scrape,
whichever worker answers it, sums every worker's files: every scrape shows the same totals.

The metrics and their names are those of :class:`PrometheusMetrics` (one worker). Writing
the files costs a few µs per request more than one worker's plain counters (measured in the
README, "Workers"), so this is used only when there are several workers.
"""

from __future__ import annotations

import os
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as _values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.observe import ExperimentAnswer, FetchOutcome
from prompt_middleware.sidecar.metric_names import (
    CACHE,
    CACHE_RESULTS,
    CONTROL_FALLBACKS,
    EXPERIMENT_REQUESTS,
    LATENCY_BUCKETS,
    OVERHEAD,
    OVERHEAD_BUCKETS,
    REDIS_UP,
    REQUESTS,
    SPANS_DROPPED,
    STORE_FETCH,
    UPSTREAM,
    VARIANT_DURATION,
    VARIANT_FIRST_TOKEN,
    VARIANT_RESPONSES,
    VARIANT_TOKENS,
    VARIANT_UPSTREAM,
    MetricName,
    status_class,
)
from prompt_middleware.tracing import Tracing

__all__ = ["MULTIPROCESS_VARIABLE", "SharedMetrics"]

MULTIPROCESS_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"


class SharedMetrics:
    """Requests by route and status, cache results, store and upstream latency, Redis up —
    summed over the workers of one ``serve``."""

    def __init__(self) -> None:
        if not os.environ.get(MULTIPROCESS_VARIABLE):
            raise ConfigurationError(
                f"Metrics shared by workers need {MULTIPROCESS_VARIABLE} (prompt-middleware "
                "serve --workers N sets it with PROMPT_MIDDLEWARE_WORKER_DIR)."
            )
        if _values.ValueClass is _values.MutexValue:
            # prometheus_client picks its value class when first imported; a process that
            # imported it before the variable was set must still write the shared files.
            _values.ValueClass = _values.MultiProcessValue()  # type: ignore[no-untyped-call]
        self._requests = Counter(*_named(REQUESTS), registry=None)
        cache = Counter(*_named(CACHE), registry=None)
        self._cache = {result: cache.labels(result) for result in CACHE_RESULTS}
        self._overhead = Histogram(*_named(OVERHEAD), buckets=OVERHEAD_BUCKETS, registry=None)
        self._store = Histogram(*_named(STORE_FETCH), buckets=LATENCY_BUCKETS, registry=None)
        self._upstream = Histogram(*_named(UPSTREAM), buckets=LATENCY_BUCKETS, registry=None)
        self._variants = Counter(*_named(EXPERIMENT_REQUESTS), registry=None)
        self._fallbacks = Counter(*_named(CONTROL_FALLBACKS), registry=None)
        # Histograms are summed bucket by bucket over the workers' files, like counters.
        self._variant_upstream = _latency(VARIANT_UPSTREAM)
        self._variant_first_token = _latency(VARIANT_FIRST_TOKEN)
        self._variant_duration = _latency(VARIANT_DURATION)
        self._variant_tokens = Counter(*_named(VARIANT_TOKENS), registry=None)
        self._variant_responses = Counter(*_named(VARIANT_RESPONSES), registry=None)
        self._redis_up: Gauge | None = None  # only with Redis configured
        self._dropped = Counter(*_named(SPANS_DROPPED), registry=None)
        self._tracing: Tracing | None = None
        self._dropped_counted = 0

    def count_dropped_spans(self, tracing: Tracing | None) -> None:
        """Report ``tracing``'s dropped spans (README, "Traces"), summed over the workers."""
        self._tracing = tracing

    def request(self, route: str, status: int, cache: str | None, overhead_seconds: float) -> None:
        self._requests.labels(route, str(status)).inc()
        if cache is not None:
            self._cache[cache].inc()
        self._overhead.observe(overhead_seconds)
        if self._tracing is not None:
            # A span is dropped as a request ends, just before this report: the shared file
            # is written only when the count has moved.
            dropped = self._tracing.dropped_spans
            if dropped != self._dropped_counted:
                self._dropped.inc(dropped - self._dropped_counted)
                self._dropped_counted = dropped

    def store_fetch(self, store: str, outcome: FetchOutcome, seconds: float) -> None:
        self._store.labels(store, outcome).observe(seconds)

    def experiment_request(self, experiment: str, variant: str) -> None:
        self._variants.labels(experiment, variant).inc()

    def experiment_fallback(self, experiment: str, variant: str) -> None:
        self._fallbacks.labels(experiment, variant).inc()

    def experiment_answer(self, answer: ExperimentAnswer) -> None:
        experiment, variant = answer.experiment, answer.variant
        if answer.upstream_seconds is not None:
            self._variant_upstream.labels(experiment, variant).observe(answer.upstream_seconds)
        if answer.first_token_seconds is not None:
            first_token = self._variant_first_token.labels(experiment, variant)
            first_token.observe(answer.first_token_seconds)
        self._variant_duration.labels(experiment, variant).observe(answer.duration_seconds)
        if answer.input_tokens is not None:
            self._variant_tokens.labels(experiment, variant, "input").inc(answer.input_tokens)
        if answer.output_tokens is not None:
            self._variant_tokens.labels(experiment, variant, "output").inc(answer.output_tokens)
        status = status_class(answer.status)
        self._variant_responses.labels(experiment, variant, status).inc()

    def upstream_response(self, status: int, seconds: float) -> None:
        self._upstream.labels(str(status)).observe(seconds)

    def redis_state(self, up: bool) -> None:
        if self._redis_up is None:
            # The lowest of the live workers: 0 as soon as one of them cannot reach Redis.
            self._redis_up = Gauge(
                *_named(REDIS_UP),
                registry=None,
                multiprocess_mode="livemin",
            )
        self._redis_up.set(1 if up else 0)

    def render(self) -> bytes:
        """Every worker's metrics, summed."""
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def close(self) -> None:
        """At a worker's shutdown: its live gauges no longer count."""
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _latency(metric: MetricName) -> Histogram:
    return Histogram(*_named(metric), buckets=LATENCY_BUCKETS, registry=None)


def _named(metric: MetricName) -> tuple[str, str, tuple[str, ...]]:
    """prometheus_client's first three arguments: name, documentation, label names."""
    return metric.name, metric.help, metric.labels
