"""The sidecar's Grafana dashboard, written with grafana-foundation-sdk; prints its JSON.

    .venv/bin/python examples/grafana/dashboard.py > examples/grafana/prompt-middleware.json

The JSON beside this script is what Grafana imports (README, "Dashboard"); a test checks that
it is this script's output, and that every query returns data from a real Prometheus.
Queries read only the sidecar's own metrics, with no recording rules.
"""

from __future__ import annotations

import json
from typing import Final

from grafana_foundation_sdk.builders import common, dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

__all__ = ["QUERY_VARIABLES", "build", "render"]

DATASOURCE: Final = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE: Final = "[$__rate_interval]"
#: The dashboard's variables that its queries use, and what the test puts in their place.
QUERY_VARIABLES: Final = ("$__rate_interval", "$experiment")
_IN_EXPERIMENT: Final = '{experiment="$experiment"}'


def _query(expr: str, legend: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)


def _timeseries(
    title: str, description: str, unit: str, *queries: prometheus.Dataquery, width: int = 8
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(8)
        .span(width)
        .legend(
            common.VizLegendOptions()
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.NONE))
    )
    for ref_id, query in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(query.ref_id(ref_id))
    return panel


def _quantile(q: float, metric: str, by: str, selector: str = "") -> str:
    return f"histogram_quantile({q}, sum by ({by}le) (rate({metric}_bucket{selector}{RATE})))"


def _sidecar_rows() -> list[tuple[str, timeseries.Panel]]:
    """The sidecar as a whole: a row each, one panel across it."""
    requests = _timeseries(
        "Requests by route and status",
        "Requests per second on the middleware's routes, by route and HTTP status.",
        "reqps",
        _query(
            f"sum by (route, status) (rate(prompt_middleware_requests_total{RATE}))",
            "{{route}} {{status}}",
        ),
        width=24,
    )
    overhead = _timeseries(
        "Middleware overhead p50 / p99",
        "Time spent in the middleware per request, the upstream excluded.",
        "s",
        _query(_quantile(0.5, "prompt_middleware_overhead_seconds", ""), "p50"),
        _query(_quantile(0.99, "prompt_middleware_overhead_seconds", ""), "p99"),
        width=24,
    )
    cache = _timeseries(
        "Prompt cache results",
        "Managed requests per second by how the prompt cache served them: hit, miss "
        "(waited for the store), stale (served while a refresh runs, or the store is down).",
        "reqps",
        _query(
            f"sum by (result) (rate(prompt_middleware_prompt_cache_total{RATE}))",
            "{{result}}",
        ),
        width=24,
    )
    stores = _timeseries(
        "Store fetches by outcome",
        "Prompt store calls per second (cache misses and refreshes), by store and outcome.",
        "reqps",
        _query(
            f"sum by (store, outcome) (rate(prompt_middleware_store_fetch_seconds_count{RATE}))",
            "{{store}} {{outcome}}",
        ),
        width=24,
    )
    return [
        ("Traffic", requests),
        ("Overhead", overhead),
        ("Prompt cache", cache),
        ("Prompt stores", stores),
    ]


def _experiment_row() -> list[timeseries.Panel]:
    """The panels of one experiment, its variants side by side (one series each)."""
    responses = f"prompt_middleware_variant_responses_total{_IN_EXPERIMENT}"
    requests = f"prompt_middleware_experiment_requests_total{_IN_EXPERIMENT}"
    answered = 'prompt_middleware_variant_responses_total{experiment="$experiment",status="2xx"}'
    return [
        _timeseries(
            "Share of traffic",
            "Each variant's share of the experiment's requests (as x-prompt-variant shows it: "
            "a request served the control after a fallback counts as the control).",
            "percentunit",
            _query(
                f"sum by (variant) (rate({requests}{RATE})) / ignoring (variant) group_left "
                f"sum (rate({requests}{RATE}))",
                "{{variant}}",
            ),
        ),
        _timeseries(
            "Latency p50 / p95",
            "From the request's arrival until the answer's last byte, per variant.",
            "s",
            *(
                _query(
                    _quantile(
                        q, "prompt_middleware_variant_duration_seconds", "variant, ", _IN_EXPERIMENT
                    ),
                    f"{{{{variant}}}} p{int(q * 100)}",
                )
                for q in (0.5, 0.95)
            ),
        ),
        _timeseries(
            "Time to first token p50 / p95",
            "Streams: from the request's arrival until the first non-empty text delta.",
            "s",
            *(
                _query(
                    _quantile(
                        q,
                        "prompt_middleware_variant_first_token_seconds",
                        "variant, ",
                        _IN_EXPERIMENT,
                    ),
                    f"{{{{variant}}}} p{int(q * 100)}",
                )
                for q in (0.5, 0.95)
            ),
        ),
        _timeseries(
            "Tokens per request",
            "Input and output tokens (from the answers' usage) per successful answer.",
            "short",
            _query(
                "sum by (variant, kind) (rate(prompt_middleware_variant_tokens_total"
                f"{_IN_EXPERIMENT}{RATE})) / ignoring (kind) group_left "
                f"sum by (variant) (rate({answered}{RATE}))",
                "{{variant}} {{kind}}",
            ),
        ),
        _timeseries(
            "Error rate",
            "Share of the variant's answers with a 4xx or 5xx status (the upstream's or ours).",
            "percentunit",
            _query(
                "sum by (variant) (rate(prompt_middleware_variant_responses_total"
                f'{{experiment="$experiment",status=~"4xx|5xx"}}{RATE})) / '
                f"sum by (variant) (rate({responses}{RATE}))",
                "{{variant}}",
            ),
        ),
        _timeseries(
            "Control fallbacks",
            "Requests per second given a variant that could not be served (not found, store "
            "down), so the control was; by the variant that failed.",
            "reqps",
            _query(
                "sum by (variant) (rate(prompt_middleware_experiment_control_fallbacks_total"
                f"{_IN_EXPERIMENT}{RATE}))",
                "{{variant}}",
            ),
        ),
    ]


def build() -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("prompt-middleware")
        .uid("prompt-middleware")
        .tags(["prompt-middleware"])
        .refresh("30s")
        .time("now-1h", "now")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            dashboard.QueryVariable("experiment")
            .label("Experiment")
            .datasource(DATASOURCE)
            .query("label_values(prompt_middleware_variant_responses_total, experiment)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
        )
    )
    ids = iter(range(1, 100))
    for title, panel in _sidecar_rows():
        board = board.with_row(dashboard.Row(title).id(next(ids)))
        board = board.with_panel(panel.id(next(ids)))
    experiment_row = dashboard.Row("Experiment $experiment").repeat("experiment")
    board = board.with_row(experiment_row.id(next(ids)))
    for panel in _experiment_row():
        board = board.with_panel(panel.id(next(ids)))
    return board


def render() -> str:
    """The dashboard's JSON, as checked in."""
    return json.dumps(build().build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
