"""The choice of a variant: shares match weights, a key is sticky, the function is the README's."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import prompt_middleware
from prompt_middleware.experiments import Experiment, ExperimentIndex, Split, Variant
from prompt_middleware.experiments.choice import point_for_key

USERS = [f"user-{n}" for n in range(10_000)]


def split(*weights: float, name: str | None = "tone", sticky: str = "user") -> Split:
    variants = tuple(Variant(label=f"v{i}", weight=w) for i, w in enumerate(weights))
    index = ExperimentIndex(
        [Experiment(prompt_id="support/answer", variants=variants, name=name, sticky=sticky)]
    )
    found = index.get("support/answer")
    assert found is not None
    return found


def shares(chosen: list[str]) -> dict[str, float]:
    counts = Counter(chosen)
    return {name: 100 * count / len(chosen) for name, count in counts.items()}


@pytest.mark.parametrize(
    "weights",
    [(90, 10), (50, 30, 20), (0.25, 0.25, 0.5), (1, 1, 1, 1, 1)],
)
def test_a_variants_share_of_10000_distinct_users_is_within_2_points_of_its_weight(
    weights: tuple[float, ...],
) -> None:
    experiment = split(*weights)
    got = shares([experiment.choose(user).name for user in USERS])
    total = sum(weights)
    for i, weight in enumerate(weights):
        assert abs(got.get(f"v{i}", 0.0) - 100 * weight / total) <= 2, got


def test_one_user_sent_100_times_gets_one_variant() -> None:
    experiment = split(50, 50)
    for user in ("alice", "bob", "carol", "dave"):
        assert len({experiment.choose(user).name for _ in range(100)}) == 1


def test_users_land_on_both_variants() -> None:
    # Stickiness must not be "everyone on the control".
    experiment = split(50, 50)
    assert {experiment.choose(user).name for user in USERS[:50]} == {"v0", "v1"}


def test_weight_0_is_never_chosen_with_a_key_or_without() -> None:
    experiment = split(0, 70, 0, 30, 0)
    keyed = {experiment.choose(user).name for user in USERS}
    drawn = {experiment.choose(None).name for _ in range(10_000)}
    assert keyed == drawn == {"v1", "v3"}


def test_without_a_key_the_choice_is_weighted_random() -> None:
    rng = random.Random(14)
    experiment = Split(
        Experiment(
            prompt_id="p",
            variants=(Variant(label="a", weight=80), Variant(label="b", weight=20)),
        ),
        rng.random,
    )
    got = shares([experiment.choose(None).name for _ in range(10_000)])
    assert abs(got["a"] - 80) <= 2
    assert abs(got["b"] - 20) <= 2


def test_a_point_rounded_up_to_the_total_goes_to_the_last_variant_with_weight() -> None:
    experiment = Split(
        Experiment(
            prompt_id="p",
            variants=(Variant(label="a", weight=1), Variant(label="off", weight=0)),
        ),
        lambda: 1.0,
    )
    assert experiment.choose(None).name == "a"


def test_the_choice_is_the_documented_function_recomputed_by_hand() -> None:
    # What a data team writes offline from the README, with nothing of ours imported.
    def offline(name: str, user: str, weights: list[float]) -> int:
        digest = hashlib.sha256(f"{name}:{user}".encode()).digest()
        target = int.from_bytes(digest[:8], "big") / 2**64 * sum(weights)
        cumulative = 0.0
        for i, weight in enumerate(weights):
            cumulative += weight
            if target < cumulative:
                return i
        return max(i for i, w in enumerate(weights) if w > 0)

    weights = [60.0, 0.0, 25.0, 15.0]
    experiment = split(*weights, name="support-tone")
    for user in USERS[:2000]:
        assert experiment.choose(user).name == f"v{offline('support-tone', user, weights)}"


def test_a_known_user_has_a_known_point() -> None:
    # Pinned so that a change to the function (and to every user's variant) cannot go unseen.
    digest = hashlib.sha256(b"support-tone:alice").digest()
    assert point_for_key("support-tone", "alice") == int(digest[:8].hex(), 16) / 2**64
    assert point_for_key("support-tone", b"alice") == point_for_key("support-tone", "alice")


def test_an_unnamed_experiment_is_seeded_by_its_prompt_id() -> None:
    unnamed = split(50, 50, name=None)
    named = split(50, 50, name="support/answer")
    assert [unnamed.choose(u).name for u in USERS[:200]] == [
        named.choose(u).name for u in USERS[:200]
    ]


def test_the_experiment_name_reshuffles_callers() -> None:
    one, other = split(50, 50, name="one"), split(50, 50, name="other")
    assert [one.choose(u).name for u in USERS[:200]] != [other.choose(u).name for u in USERS[:200]]


def test_a_header_value_as_bytes_is_the_same_key_as_its_text() -> None:
    experiment = split(50, 50, sticky="header:X-User-Id")
    assert experiment.sticky_header == b"x-user-id"
    assert not experiment.reads_user
    for user in USERS[:200]:
        assert experiment.choose(user.encode()) is experiment.choose(user)


def test_the_choice_is_the_same_in_two_separately_started_processes() -> None:
    script = (
        "import json, sys\n"
        "from prompt_middleware.experiments import Experiment, ExperimentIndex, Variant\n"
        "variants = (Variant(label='a', weight=50), Variant(label='b', weight=30),"
        " Variant(version=7, weight=20))\n"
        "index = ExperimentIndex([Experiment(prompt_id='p', name='tone', variants=variants)])\n"
        "split = index.get('p')\n"
        "print(json.dumps([split.choose(f'user-{n}').name for n in range(500)]))\n"
    )
    src = str(Path(prompt_middleware.__file__).resolve().parent.parent)
    runs = []
    for hash_seed in ("1", "2"):  # str hashes differ between the two; the choice must not
        env = {**os.environ, "PYTHONPATH": src, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, check=True, text=True
        )
        runs.append(json.loads(done.stdout))
    experiment = ExperimentIndex(
        [
            Experiment(
                prompt_id="p",
                name="tone",
                variants=(
                    Variant(label="a", weight=50),
                    Variant(label="b", weight=30),
                    Variant(version=7, weight=20),
                ),
            )
        ]
    ).get("p")
    assert experiment is not None
    here = [experiment.choose(f"user-{n}").name for n in range(500)]
    assert runs[0] == runs[1] == here
    assert set(here) == {"a", "b", "version-7"}


def test_the_index_finds_an_experiment_by_prompt_id_only() -> None:
    index = ExperimentIndex(
        [
            Experiment(prompt_id="a", variants=(Variant(label="x", weight=1),)),
            Experiment(
                prompt_id="b", variants=(Variant(label="y", weight=1),), sticky="header:X-Tenant"
            ),
        ]
    )
    assert index
    assert len(index) == 2
    assert index.get("c") is None
    found = index.get("b")
    assert found is not None
    assert found.name == "b"
    assert index.sticky_headers == frozenset({b"x-tenant"})
    assert not ExperimentIndex()


def test_an_arm_carries_its_header_and_whether_it_is_the_control() -> None:
    index = ExperimentIndex(
        [
            Experiment(
                prompt_id="p",
                variants=(Variant(label="prod", weight=1), Variant(version=7, weight=1)),
            )
        ]
    )
    found = index.get("p")
    assert found is not None
    control, candidate = found.arms
    assert found.control is control
    assert control.is_control
    assert not candidate.is_control
    assert control.header == (b"x-prompt-variant", b"prod")
    assert candidate.header == (b"x-prompt-variant", b"version-7")
    assert (candidate.label, candidate.version) == (None, 7)
