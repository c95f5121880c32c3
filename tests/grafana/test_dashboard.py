"""The Grafana dashboard of ``examples/grafana`` (README, "Dashboard"): the JSON is the
generator's output, and every query of it returns data from a real Prometheus that scrapes a
real sidecar running an experiment (with the example's scrape configuration)."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from examples.grafana.dashboard import render
from tests.fakes.experiment_traffic import (
    EXPERIMENT,
    metric_samples,
    send_known_sequence,
    sidecar_env,
)
from tests.fakes.prometheus_server import PrometheusServer, running_prometheus
from tests.fakes.server import serve_in_background
from tests.fakes.sidecars import start_sidecar
from tests.fakes.upstream import FakeUpstream

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "prompt-middleware.json"
#: What Grafana puts in place of the variables the queries use.
VARIABLES = {"$__rate_interval": "1m", "$experiment": EXPERIMENT}
_METRIC = re.compile(r"\bprompt_middleware_\w+")
_BY = re.compile(r"\bby \(([^)]*)\)")
_SCRAPED_SECONDS = 30.0


def test_the_json_is_the_generators_output() -> None:
    assert DASHBOARD.read_text() == render()


def test_the_dashboard_has_its_variables_and_rows() -> None:
    board = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["experiment"]["query"] == (
        "label_values(prompt_middleware_variant_responses_total, experiment)"
    )
    rows = [p for p in board["panels"] if p["type"] == "row"]
    assert [(r["title"], r.get("repeat")) for r in rows] == [
        ("Traffic", None),
        ("Overhead", None),
        ("Prompt cache", None),
        ("Prompt stores", None),
        ("Experiment $experiment", "experiment"),
    ]
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def _queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in board["panels"]:
        for target in panel.get("targets", ()):
            yield panel["title"], target["expr"]


def _substituted(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


async def _until_stored(prometheus: PrometheusServer, expr: str, expected: float) -> None:
    """Return once Prometheus answers ``expr`` with ``expected``: the scrape that carries it
    is then committed. (A target's ``lastScrape`` is not enough: Prometheus sets it before it
    commits that scrape's samples.) Each look is a real round trip."""
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(_SCRAPED_SECONDS):
            while not (seen := await prometheus.query(expr)) or (
                float(seen[0]["value"][1]) != expected
            ):
                pass
    except TimeoutError:
        raise AssertionError(f"{expr} never became {expected}: last {seen}") from None


async def _send_and_wait(
    client: httpx.AsyncClient,
    upstream: FakeUpstream,
    prometheus: PrometheusServer,
    rounds: int,
) -> None:
    sent = await send_known_sequence(client, upstream)
    counted = sum(1 for s in sent if s.variant is not None) * rounds
    await _until_stored(prometheus, "sum(prompt_middleware_variant_responses_total)", counted)


async def test_every_query_returns_data_from_a_real_prometheus(tmp_path: Path) -> None:
    board = json.loads(DASHBOARD.read_text())
    upstream = FakeUpstream()
    async with serve_in_background(upstream) as upstream_url:
        sidecar = await start_sidecar(sidecar_env(tmp_path, upstream_url), arguments=())
        try:
            target = f"127.0.0.1:{sidecar.port}"
            async with (
                running_prometheus([target], tmp_path) as prometheus,
                httpx.AsyncClient(base_url=sidecar.url, timeout=30) as client,
            ):
                await _until_stored(prometheus, "up", 1)
                # Twice, each time until scraped: a rate needs two samples that differ.
                await _send_and_wait(client, upstream, prometheus, rounds=1)
                await _send_and_wait(client, upstream, prometheus, rounds=2)
                assert [t["health"] for t in await prometheus.targets()] == ["up"]
                exported = metric_samples((await client.get("/metrics")).text)
                results = {
                    (title, expr): await prometheus.query(_substituted(expr))
                    for title, expr in _queries(board)
                }
                experiments = await prometheus.api.get(
                    "/api/v1/label/experiment/values",
                    params={"match[]": "prompt_middleware_variant_responses_total"},
                )
        finally:
            await sidecar.stop()

    assert experiments.json()["data"] == [EXPERIMENT]
    labels_of: dict[str, set[str]] = {}
    for name, labels in exported:
        labels_of.setdefault(name, set()).update(label for label, _ in labels)
    assert len(results) >= 13
    for (title, expr), result in results.items():
        metrics = set(_METRIC.findall(expr))
        assert metrics, expr
        assert metrics <= labels_of.keys(), (title, metrics - labels_of.keys())
        known = set().union(*(labels_of[m] for m in metrics))
        for group in _BY.findall(expr):
            grouped = {label.strip() for label in group.split(",")} - {""}
            assert grouped <= known, (title, expr, grouped - known)
        assert result, (title, expr)
        values = [float(series["value"][1]) for series in result]
        assert any(math.isfinite(v) for v in values), (title, expr, result)
