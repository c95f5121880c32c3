"""Per-variant metrics (README, "Dashboard") of a real sidecar in front of a fake upstream: the
exact counts of a known sequence of requests, with one worker and summed over two."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fakes.experiment_traffic import (
    EXPERIMENT,
    expected_series,
    metric_samples,
    send_known_sequence,
    sidecar_env,
    variant_samples,
)
from tests.fakes.server import serve_in_background
from tests.fakes.sidecars import start_sidecar
from tests.fakes.upstream import FakeUpstream


@pytest.mark.parametrize("workers", [1, 2])
async def test_each_variant_series_counts_the_known_sequence(tmp_path: Path, workers: int) -> None:
    upstream = FakeUpstream()
    async with serve_in_background(upstream) as upstream_url:
        sidecar = await start_sidecar(
            sidecar_env(tmp_path, upstream_url), workers=workers, arguments=()
        )
        try:
            async with httpx.AsyncClient(base_url=sidecar.url, timeout=30) as client:
                sent = await send_known_sequence(client, upstream)
                # Every scrape, whichever worker answers it, shows the same totals.
                scrapes = [(await client.get("/metrics")).text for _ in range(4)]
        finally:
            await sidecar.stop()
    expected = expected_series(sent, upstream)
    for text in scrapes:
        assert variant_samples(text) == expected
    samples = metric_samples(scrapes[0])
    for variant in ("production", "candidate"):
        labels = (("experiment", EXPERIMENT), ("variant", variant))
        duration = samples[("prompt_middleware_variant_duration_seconds_sum", labels)]
        upstream_sum = samples[("prompt_middleware_variant_upstream_seconds_sum", labels)]
        first_token = samples[("prompt_middleware_variant_first_token_seconds_sum", labels)]
        assert 0 < upstream_sum < duration
        assert 0 < first_token < duration
        inf = tuple(sorted((*labels, ("le", "+Inf"))))
        count = samples[("prompt_middleware_variant_duration_seconds_count", labels)]
        assert samples[("prompt_middleware_variant_duration_seconds_bucket", inf)] == count
    # The fallback is counted as such, and the variant it fell back from has no answers.
    fallback = (("experiment", EXPERIMENT), ("variant", "ghost"))
    assert samples[("prompt_middleware_experiment_control_fallbacks_total", fallback)] == 1
    assert not [key for key in samples if ("variant", "ghost") in key[1] and "_variant_" in key[0]]
