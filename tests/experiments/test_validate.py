"""The ``experiments:`` section: what is accepted, and every refusal with its message."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.experiments import (
    Experiment,
    ExperimentIndex,
    Variant,
    parse_experiments,
    validate_experiments,
)


def load(text: str) -> Any:
    return yaml.safe_load(text)


def refusal(raw: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        parse_experiments(raw, "config.yaml")
    return str(caught.value)


def test_the_contracts_example_is_read_with_its_defaults() -> None:
    (experiment,) = parse_experiments(
        load(
            """
            - prompt_id: support/answer
              variants:
                - {label: production, weight: 90}
                - {version: 7, weight: 10}
            """
        )
    )
    assert experiment == Experiment(
        prompt_id="support/answer",
        variants=(Variant(label="production", weight=90.0), Variant(version=7, weight=10.0)),
    )
    assert experiment.title == "support/answer"
    assert experiment.sticky == "user"
    assert experiment.sticky_header is None
    assert [variant.name for variant in experiment.variants] == ["production", "version-7"]


def test_name_and_every_sticky_form_are_accepted() -> None:
    raw = [
        {
            "name": "a",
            "prompt_id": "p1",
            "sticky": "none",
            "variants": [{"label": "x", "weight": 1}],
        },
        {
            "prompt_id": "p2",
            "sticky": "header:X-User-Id",
            "variants": [{"label": "x", "weight": 0.5}],
        },
        {"prompt_id": "p3", "sticky": "user", "variants": [{"label": "x", "weight": 1}]},
    ]
    first, second, third = parse_experiments(raw)
    assert (first.title, first.sticky) == ("a", "none")
    assert second.sticky_header == "x-user-id"
    assert third.sticky == "user"


def test_no_section_is_no_experiment() -> None:
    assert parse_experiments(None) == ()
    assert parse_experiments([]) == ()


def test_a_section_that_is_not_a_list_is_refused() -> None:
    assert refusal({"prompt_id": "p"}) == "config.yaml: the experiments section must be a list."


def test_an_unknown_key_is_named_with_the_entry() -> None:
    message = refusal(
        [
            {
                "name": "tone",
                "prompt_id": "p",
                "stiky": "user",
                "variants": [{"label": "a", "weight": 1}],
            }
        ]
    )
    assert message == (
        "config.yaml: 1 problem in experiments:\n"
        "  - experiment 'tone': unknown key 'stiky'; "
        "the keys are name, prompt_id, variants, sticky."
    )


def test_an_unknown_variant_key_is_named_with_the_entry_and_the_variant() -> None:
    message = refusal(
        [{"prompt_id": "support/answer", "variants": [{"label": "a", "weight": 1, "wieght": 2}]}]
    )
    assert (
        "experiment 'support/answer': variants[0]: unknown key 'wieght'; "
        "the keys are label, version, weight." in message
    )


def test_a_variant_with_both_label_and_version_is_refused() -> None:
    message = refusal(
        [
            {
                "name": "tone",
                "prompt_id": "p",
                "variants": [{"label": "a", "version": 3, "weight": 1}],
            }
        ]
    )
    assert (
        "experiment 'tone': variants[0]: gives both 'label' and 'version'; give one of them."
        in (message)
    )


def test_a_variant_with_neither_label_nor_version_is_refused() -> None:
    message = refusal([{"name": "tone", "prompt_id": "p", "variants": [{"weight": 1}]}])
    assert "experiment 'tone': variants[0]: needs a 'label' or a 'version'." in message


def test_a_negative_weight_is_refused() -> None:
    message = refusal(
        [
            {
                "name": "tone",
                "prompt_id": "p",
                "variants": [{"label": "a", "weight": 5}, {"label": "b", "weight": -1}],
            }
        ]
    )
    assert "experiment 'tone': variants[1]: 'weight' is -1; it must be a finite number >= 0." in (
        message
    )


@pytest.mark.parametrize("weight", ["10", True, float("nan"), float("inf")])
def test_a_weight_that_is_not_a_finite_number_is_refused(weight: Any) -> None:
    message = refusal([{"prompt_id": "p", "variants": [{"label": "a", "weight": weight}]}])
    assert f"'weight' is {weight!r}; it must be a finite number >= 0." in message


def test_weights_that_are_no_finite_double_are_reported_with_the_other_problems() -> None:
    # An integer of 400 digits has no double; two doubles near the largest sum past it: the
    # choice would then compare against inf and NaN. Each joins the report, not a crash.
    huge = 10**400
    message = refusal(
        [
            {"name": "big", "prompt_id": "p", "variants": [{"label": "a", "weight": huge}]},
            {
                "name": "sum",
                "prompt_id": "q",
                "variants": [{"label": "a", "weight": 1e308}, {"label": "b", "weight": 1e308}],
            },
            {"name": "other", "prompt_id": "r", "variants": [{"label": "a"}]},
        ]
    )
    assert "3 problems" in message
    assert "experiment 'big': variants[0]: 'weight' is 1000000000" in message
    assert "it must be a finite number >= 0." in message
    assert str(huge) not in message  # cut, not 400 digits in a start-up error
    assert "experiment 'sum': the variants' 'weight' values sum past the largest number" in message
    assert "experiment 'other': variants[0]: needs a 'weight'" in message


def test_weights_built_in_code_whose_sum_overflows_are_refused() -> None:
    variants = (Variant(label="a", weight=1e308), Variant(label="b", weight=1e308))
    with pytest.raises(ConfigurationError, match="sum past the largest number"):
        validate_experiments([Experiment(prompt_id="p", variants=variants)])


def test_a_missing_weight_is_refused() -> None:
    message = refusal([{"prompt_id": "p", "variants": [{"label": "a"}]}])
    assert "experiment 'p': variants[0]: needs a 'weight' (a number >= 0; 0 switches it off)." in (
        message
    )


def test_weights_summing_to_zero_are_refused() -> None:
    message = refusal(
        [
            {
                "name": "tone",
                "prompt_id": "p",
                "variants": [{"label": "a", "weight": 0}, {"label": "b", "weight": 0.0}],
            }
        ]
    )
    assert "experiment 'tone': the variants' 'weight' values sum to 0; give one a weight > 0." in (
        message
    )


def test_two_experiments_on_one_prompt_are_refused_naming_the_prompt_id() -> None:
    variants = [{"label": "a", "weight": 1}]
    message = refusal(
        [
            {"name": "first", "prompt_id": "support/answer", "variants": variants},
            {"prompt_id": "support/answer", "variants": variants},
        ]
    )
    assert message == (
        "config.yaml: 1 problem in experiments:\n"
        "  - experiment 'first' and experiment 'support/answer' are on the same prompt_id "
        "'support/answer'; a prompt takes one experiment at a time."
    )


def test_two_experiments_with_one_name_are_refused() -> None:
    variants = [{"label": "a", "weight": 1}]
    message = refusal(
        [
            {"name": "tone", "prompt_id": "p1", "variants": variants},
            {"name": "tone", "prompt_id": "p2", "variants": variants},
        ]
    )
    assert "two experiments are called 'tone' (their name, else their prompt_id)" in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("just text", "experiments[0]: an experiment must be a mapping."),
        (
            {"variants": [{"label": "a", "weight": 1}]},
            "experiments[0]: 'prompt_id' must be a non-empty string (the prompt to split).",
        ),
        (
            {"prompt_id": "p", "name": 3, "variants": [{"label": "a", "weight": 1}]},
            "experiment 'p': 'name' must be a non-empty string.",
        ),
        (
            {"prompt_id": "p", "sticky": "cookie", "variants": [{"label": "a", "weight": 1}]},
            "experiment 'p': 'sticky' is 'cookie'; write user, none or header:<header name>.",
        ),
        (
            {
                "prompt_id": "p",
                "sticky": "header:bad name",
                "variants": [{"label": "a", "weight": 1}],
            },
            "experiment 'p': 'sticky' is 'header:bad name'; "
            "write user, none or header:<header name>.",
        ),
        ({"prompt_id": "p"}, "experiment 'p': 'variants' must list at least one variant"),
        ({"prompt_id": "p", "variants": []}, "experiment 'p': 'variants' must list at least one"),
        (
            {"prompt_id": "p", "variants": ["production"]},
            "experiment 'p': variants[0]: "
            "a variant must be a mapping such as {label: …, weight: …}.",
        ),
        (
            {"prompt_id": "p", "variants": [{"label": "", "weight": 1}]},
            "experiment 'p': variants[0]: 'label' must be a non-empty string.",
        ),
        (
            {"prompt_id": "p", "variants": [{"version": 0, "weight": 1}]},
            "experiment 'p': variants[0]: 'version' is 0; it must be an integer >= 1.",
        ),
        (
            {"prompt_id": "p", "variants": [{"version": "7", "weight": 1}]},
            "experiment 'p': variants[0]: 'version' is '7'; it must be an integer >= 1.",
        ),
        (
            {
                "prompt_id": "p",
                "variants": [{"label": "a", "weight": 1}, {"label": "a", "weight": 1}],
            },
            "experiment 'p': two variants name the same 'label' (a).",
        ),
        (
            {
                "prompt_id": "p",
                "variants": [{"version": 2, "weight": 1}, {"version": 2, "weight": 1}],
            },
            "experiment 'p': two variants name the same 'version' (version-2).",
        ),
    ],
)
def test_other_malformed_entries_are_refused_with_what_to_fix(entry: Any, expected: str) -> None:
    assert expected in refusal([entry])


def test_every_problem_of_the_section_is_reported_together() -> None:
    raw = load(
        """
        - name: tone
          prompt_id: support/answer
          colour: blue
          variants:
            - {label: production, version: 3, weight: 90}
            - {weight: 10}
        - prompt_id: billing/answer
          variants:
            - {label: production, weight: -5}
            - {label: candidate, weight: 0}
        - prompt_id: support/answer
          variants:
            - {label: production, weight: 0}
        """
    )
    message = refusal(raw)
    expected = [
        "experiment 'tone': unknown key 'colour'",
        "experiment 'tone': variants[0]: gives both 'label' and 'version'",
        "experiment 'tone': variants[1]: needs a 'label' or a 'version'",
        "experiment 'billing/answer': variants[0]: 'weight' is -5",
        "experiment 'support/answer': the variants' 'weight' values sum to 0",
        "experiment 'tone' and experiment 'support/answer' are on the same prompt_id "
        "'support/answer'",
    ]
    assert message.startswith(f"config.yaml: {len(expected)} problems in experiments:\n")
    for line in expected:
        assert line in message


def test_experiments_built_in_code_are_checked_like_a_files() -> None:
    bad = Experiment(
        prompt_id="p",
        variants=(Variant(label="a", version=2, weight=1), Variant(label="b", weight=-1)),
    )
    with pytest.raises(ConfigurationError) as caught:
        ExperimentIndex([bad])
    message = str(caught.value)
    assert message.startswith("Settings.experiments: 2 problems in experiments:")
    assert "experiment 'p': variants[0]: gives both 'label' and 'version'" in message
    assert "experiment 'p': variants[1]: 'weight' is -1; it must be a finite number >= 0." in (
        message
    )


def test_good_experiments_built_in_code_pass_unchanged() -> None:
    good = (Experiment(prompt_id="p", variants=(Variant(version=4, weight=1),), name="n"),)
    assert validate_experiments(good) == good
