"""Control fallbacks: every one counted, the warning at most once a minute per experiment."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import structlog

from prompt_middleware.experiments import ControlFallbacks, Experiment, Split, Variant
from tests.fakes.clock import FakeClock


def make_split(name: str) -> Split:
    return Split(
        Experiment(
            prompt_id=f"{name}/prompt",
            name=name,
            variants=(
                Variant(label="production", weight=90),
                Variant(label="candidate", weight=10),
                Variant(version=9, weight=0),
            ),
        )
    )


def warnings(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "experiment_control_fallback"]


def test_every_fallback_is_counted_per_experiment_and_variant() -> None:
    fallbacks = ControlFallbacks(clock=FakeClock())
    tone, other = make_split("tone"), make_split("other")
    for _ in range(3):
        fallbacks.record(tone, tone.arms[1], "prompt_not_found")
    fallbacks.record(tone, tone.arms[2], "prompt_store_unavailable")
    fallbacks.record(other, other.arms[1], "prompt_not_found")
    assert dict(fallbacks.counts) == {
        ("tone", "candidate"): 3,
        ("tone", "version-9"): 1,
        ("other", "candidate"): 1,
    }


def test_the_warning_is_logged_at_most_once_a_minute_per_experiment() -> None:
    clock = FakeClock()
    fallbacks = ControlFallbacks(clock=clock)
    tone, other = make_split("tone"), make_split("other")
    with structlog.testing.capture_logs() as logs:
        for _ in range(50):
            fallbacks.record(tone, tone.arms[1], "prompt_not_found")
        fallbacks.record(other, other.arms[1], "prompt_store_unavailable")
        clock.now += 59.9
        fallbacks.record(tone, tone.arms[1], "prompt_not_found")
    assert [(w["experiment"], w["fallbacks"]) for w in warnings(logs)] == [
        ("tone", 1),
        ("other", 1),
    ]
    first = warnings(logs)[0]
    assert first["log_level"] == "warning"
    assert (first["variant"], first["control"], first["reason"]) == (
        "candidate",
        "production",
        "prompt_not_found",
    )

    with structlog.testing.capture_logs() as logs:
        clock.now += 0.1  # a minute after the first warning
        fallbacks.record(tone, tone.arms[2], "prompt_store_unavailable")
    # The line stands for the 50 fallbacks it was silent about and itself.
    assert [(w["experiment"], w["variant"], w["fallbacks"]) for w in warnings(logs)] == [
        ("tone", "version-9", 51)
    ]
    assert fallbacks.counts[("tone", "candidate")] == 51
