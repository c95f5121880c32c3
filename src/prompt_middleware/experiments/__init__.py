"""Experiments: one prompt's traffic split between variants at the proxy, sticky per caller.

    records.py    Experiment, Variant: what the config file's ``experiments:`` section says
    validate.py   the section read from YAML and checked, every problem reported at once
    choice.py     the choice function (documented for offline recomputation) and the index
    assign.py     a request's sticky key (body ``user`` or a header) and its variant
    fallback.py   a candidate that cannot be served falls back to the control: counted, warned

See the README's "Experiments" section.
"""

from __future__ import annotations

from prompt_middleware.experiments.assign import assign, sticky_key
from prompt_middleware.experiments.choice import Arm, ExperimentIndex, Split, point_for_key
from prompt_middleware.experiments.fallback import ControlFallbacks
from prompt_middleware.experiments.records import Experiment, Variant
from prompt_middleware.experiments.validate import parse_experiments, validate_experiments

__all__ = [
    "Arm",
    "ControlFallbacks",
    "Experiment",
    "ExperimentIndex",
    "Split",
    "Variant",
    "assign",
    "parse_experiments",
    "point_for_key",
    "sticky_key",
    "validate_experiments",
]
