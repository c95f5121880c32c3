"""The sidecar's metrics as a scrape reads them: counts, labels, and histogram buckets."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from prompt_middleware.sidecar.metrics import PrometheusMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: PrometheusMetrics) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def test_requests_and_cache_results_are_counted_by_label() -> None:
    metrics = PrometheusMetrics()
    for status, result in ((200, "hit"), (200, "hit"), (404, None), (200, "stale")):
        metrics.request("/v1/chat/completions", status, result, 0.0001)
    samples = scrape(metrics)
    route = ("route", "/v1/chat/completions")
    assert samples[("prompt_middleware_requests_total", (route, ("status", "200")))] == 3
    assert samples[("prompt_middleware_requests_total", (route, ("status", "404")))] == 1
    by_result = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "prompt_middleware_prompt_cache_total"
    }
    assert by_result == {"hit": 2, "miss": 0, "stale": 1}


def test_histogram_buckets_are_cumulative_and_less_or_equal() -> None:
    metrics = PrometheusMetrics()
    for seconds in (0.005, 0.0051, 0.3, 99.0):  # on a bound, just above it, mid, past the last
        metrics.upstream_response(200, seconds)
    metrics.upstream_response(502, 0.01)
    samples = scrape(metrics)

    def bucket(le: str, status: str = "200") -> float:
        labels = (("le", le), ("status", status))
        return samples[("prompt_middleware_upstream_seconds_bucket", labels)]

    assert [bucket("0.005"), bucket("0.01"), bucket("0.25"), bucket("0.5")] == [1, 2, 2, 3]
    assert [bucket("30.0"), bucket("+Inf")] == [3, 4]
    assert samples[("prompt_middleware_upstream_seconds_count", (("status", "200"),))] == 4
    total = samples[("prompt_middleware_upstream_seconds_sum", (("status", "200"),))]
    assert abs(total - 99.3101) < 1e-9
    assert bucket("+Inf", "502") == 1


def test_store_fetches_by_store_and_outcome() -> None:
    metrics = PrometheusMetrics()
    metrics.store_fetch("langfuse", "ok", 0.02)
    metrics.store_fetch("langfuse", "error", 5.0)
    metrics.store_fetch("langfuse", "ok", 0.03)
    samples = scrape(metrics)
    count = "prompt_middleware_store_fetch_seconds_count"
    assert samples[(count, (("outcome", "ok"), ("store", "langfuse")))] == 2
    assert samples[(count, (("outcome", "error"), ("store", "langfuse")))] == 1


def test_two_instances_count_apart() -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.request("/v1/chat/completions", 200, None, 0.0)
    assert (
        "prompt_middleware_requests_total",
        (("route", "/v1/chat/completions"), ("status", "200")),
    ) not in scrape(second)
