"""Prometheus metrics for the sidecar: an :class:`Observer` over ``prometheus_client``.

Requests only add to plain counters; ``prometheus_client`` turns them into metric families
when ``/metrics`` is scraped. Its own ``Counter`` and ``Histogram`` take a lock on every
increment, which a single-threaded event loop does not need and which cost a few
microseconds per request on the hot path.

Each instance has its own registry, so several apps in one process (tests) never clash.
This is one worker's view: ``serve --workers N`` uses
:class:`~prompt_middleware.sidecar.shared_metrics.SharedMetrics` instead, the same metrics
counted in files that a scrape of any worker sums over all of them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

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
    STATUS_CLASSES,
    STORE_FETCH,
    UPSTREAM,
    VARIANT_DURATION,
    VARIANT_FIRST_TOKEN,
    VARIANT_RESPONSES,
    VARIANT_TOKENS,
    VARIANT_UPSTREAM,
    MetricName,
)
from prompt_middleware.tracing import Tracing

__all__ = ["CONTENT_TYPE", "PrometheusMetrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST


class _Histogram:
    """Counts per bucket and a sum; made cumulative only when scraped."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": the first bound >= value.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            buckets.append((_bound(bound), float(cumulative)))
        family.add_metric(labels, buckets, self.total)


class _VariantSeries:
    """What one variant of an experiment has answered so far."""

    __slots__ = ("duration", "first_token", "input_tokens", "output_tokens", "statuses", "upstream")

    def __init__(self) -> None:
        self.upstream: _Histogram | None = None
        self.first_token: _Histogram | None = None
        self.duration = _Histogram(LATENCY_BUCKETS)
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.statuses = [0] * len(STATUS_CLASSES)  # 1xx to 5xx

    def add(self, answer: ExperimentAnswer) -> None:
        if answer.upstream_seconds is not None:
            if self.upstream is None:
                self.upstream = _Histogram(LATENCY_BUCKETS)
            self.upstream.observe(answer.upstream_seconds)
        if answer.first_token_seconds is not None:
            if self.first_token is None:
                self.first_token = _Histogram(LATENCY_BUCKETS)
            self.first_token.observe(answer.first_token_seconds)
        self.duration.observe(answer.duration_seconds)
        if answer.input_tokens is not None:
            self.input_tokens = (self.input_tokens or 0) + answer.input_tokens
        if answer.output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + answer.output_tokens
        index = answer.status // 100 - 1
        self.statuses[index if 0 <= index < len(STATUS_CLASSES) else -1] += 1


class PrometheusMetrics:
    """Requests by route and status, prompt cache results, store and upstream latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests: dict[tuple[str, int], int] = {}
        self._cache = dict.fromkeys(CACHE_RESULTS, 0)
        self._overhead = _Histogram(OVERHEAD_BUCKETS)
        self._store: dict[tuple[str, str], _Histogram] = {}
        self._upstream: dict[int, _Histogram] = {}
        self._variants: dict[tuple[str, str], int] = {}
        self._fallbacks: dict[tuple[str, str], int] = {}
        self._answers: dict[tuple[str, str], _VariantSeries] = {}
        self._tracing: Tracing | None = None
        self._redis_up: bool | None = None  # shown once Redis (when configured) reports
        self.registry.register(_Families(self))

    def request(self, route: str, status: int, cache: str | None, overhead_seconds: float) -> None:
        # Routes are the configured ones and statuses few: these dicts stay small.
        key = (route, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        if cache is not None:
            self._cache[cache] += 1
        self._overhead.observe(overhead_seconds)

    def store_fetch(self, store: str, outcome: FetchOutcome, seconds: float) -> None:
        histogram = self._store.get((store, outcome))
        if histogram is None:
            histogram = self._store[(store, outcome)] = _Histogram(LATENCY_BUCKETS)
        histogram.observe(seconds)

    def experiment_request(self, experiment: str, variant: str) -> None:
        # Experiments and variants come from the config file: these dicts stay small.
        key = (experiment, variant)
        self._variants[key] = self._variants.get(key, 0) + 1

    def experiment_fallback(self, experiment: str, variant: str) -> None:
        key = (experiment, variant)
        self._fallbacks[key] = self._fallbacks.get(key, 0) + 1

    def experiment_answer(self, answer: ExperimentAnswer) -> None:
        key = (answer.experiment, answer.variant)
        series = self._answers.get(key)
        if series is None:
            series = self._answers[key] = _VariantSeries()
        series.add(answer)

    def count_dropped_spans(self, tracing: Tracing | None) -> None:
        """Report ``tracing``'s dropped spans, read when scraped (README, "Traces")."""
        self._tracing = tracing

    def upstream_response(self, status: int, seconds: float) -> None:
        histogram = self._upstream.get(status)
        if histogram is None:
            histogram = self._upstream[status] = _Histogram(LATENCY_BUCKETS)
        histogram.observe(seconds)

    def redis_state(self, up: bool) -> None:
        self._redis_up = up

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """At shutdown: nothing to release (the shared metrics have files)."""

    def families(self) -> Iterator[Metric]:
        """The counts so far as Prometheus metric families (what a scrape reads)."""
        requests = _counter(REQUESTS)
        for (route, status), count in sorted(self._requests.items()):
            requests.add_metric([route, str(status)], count)
        yield requests
        cache = _counter(CACHE)
        for result, count in self._cache.items():
            cache.add_metric([result], count)
        yield cache
        overhead = _histogram(OVERHEAD)
        self._overhead.add_to(overhead, [])
        yield overhead
        store = _histogram(STORE_FETCH)
        for (name, outcome), histogram in sorted(self._store.items()):
            histogram.add_to(store, [name, outcome])
        yield store
        upstream = _histogram(UPSTREAM)
        for status, histogram in sorted(self._upstream.items()):
            histogram.add_to(upstream, [str(status)])
        yield upstream
        if self._redis_up is not None:
            yield GaugeMetricFamily(REDIS_UP.name, REDIS_UP.help, value=1 if self._redis_up else 0)
        yield from self._experiment_families()
        yield self._dropped_spans_family()

    def _experiment_families(self) -> Iterator[Metric]:
        variants = _counter(EXPERIMENT_REQUESTS)
        for (experiment, variant), count in sorted(self._variants.items()):
            variants.add_metric([experiment, variant], count)
        yield variants
        fallbacks = _counter(CONTROL_FALLBACKS)
        for (experiment, variant), count in sorted(self._fallbacks.items()):
            fallbacks.add_metric([experiment, variant], count)
        yield fallbacks
        yield from self._variant_families()

    def _variant_families(self) -> Iterator[Metric]:
        upstream, first_token = _histogram(VARIANT_UPSTREAM), _histogram(VARIANT_FIRST_TOKEN)
        duration, tokens = _histogram(VARIANT_DURATION), _counter(VARIANT_TOKENS)
        responses = _counter(VARIANT_RESPONSES)
        for (experiment, variant), series in sorted(self._answers.items()):
            labels = [experiment, variant]
            if series.upstream is not None:
                series.upstream.add_to(upstream, labels)
            if series.first_token is not None:
                series.first_token.add_to(first_token, labels)
            series.duration.add_to(duration, labels)
            for kind, count in (("input", series.input_tokens), ("output", series.output_tokens)):
                if count is not None:
                    tokens.add_metric([*labels, kind], count)
            for status, count in zip(STATUS_CLASSES, series.statuses, strict=True):
                if count:
                    responses.add_metric([*labels, status], count)
        yield from (upstream, first_token, duration, tokens, responses)

    def _dropped_spans_family(self) -> Metric:
        dropped = _counter(SPANS_DROPPED)
        dropped.add_metric([], self._tracing.dropped_spans if self._tracing is not None else 0)
        return dropped


class _Families(Collector):
    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()


def _counter(metric: MetricName) -> CounterMetricFamily:
    return CounterMetricFamily(metric.name, metric.help, labels=metric.labels)


def _histogram(metric: MetricName) -> HistogramMetricFamily:
    return HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
