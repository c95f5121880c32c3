"""The config file's ``experiments:`` section, read from its YAML value and checked.

Every problem of the section is collected before anything is raised, so one start-up shows
all of them: unknown keys, a variant with both or neither of ``label``/``version``, a weight
that is not a finite number >= 0, weights whose sum is 0 or past the largest double, two
experiments on one prompt, … Each message names the entry by its ``name`` (its ``prompt_id``
when unnamed) and the key to fix.

Experiments built in code go through the same checks (:func:`validate_experiments`), so a
``Settings`` made without a file cannot hold an experiment a file could not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.experiments.records import STICKY_HEADER_PREFIX, Experiment, Variant

__all__ = ["parse_experiments", "validate_experiments"]

_EXPERIMENT_KEYS: Final = ("name", "prompt_id", "variants", "sticky")
_VARIANT_KEYS: Final = ("label", "version", "weight")
# A value in a message is cut to this many characters (a weight of 400 digits, say).
_MAX_SHOWN: Final = 40
# An HTTP field name is a token (RFC 9110, section 5.1).
_is_token: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch


def parse_experiments(raw: Any, where: str = "experiments") -> tuple[Experiment, ...]:
    """The experiments of a loaded YAML value (``None`` when the section is absent).

    Raises one :class:`ConfigurationError` listing every problem, each prefixed by ``where``.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigurationError(f"{where}: the experiments section must be a list.")
    problems: list[str] = []
    experiments = [_parse_entry(entry, index, problems) for index, entry in enumerate(raw)]
    _check_one_per_prompt(raw, problems)
    _check_unique_names(raw, problems)
    if problems:
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigurationError(f"{where}: {count} in experiments:\n{lines}")
    return tuple(experiment for experiment in experiments if experiment is not None)


def validate_experiments(
    experiments: Iterable[Experiment], where: str = "Settings.experiments"
) -> tuple[Experiment, ...]:
    """Check records built in code exactly as a config file's section is checked."""
    records = tuple(experiments)
    parse_experiments([msgspec.to_builtins(record) for record in records], where)
    return records


def _entry_title(entry: Any, index: int) -> str:
    if isinstance(entry, dict):
        for key in ("name", "prompt_id"):
            if isinstance(entry.get(key), str) and entry[key]:
                return f"experiment {entry[key]!r}"
    return f"experiments[{index}]"


def _parse_entry(entry: Any, index: int, problems: list[str]) -> Experiment | None:
    title = _entry_title(entry, index)
    if not isinstance(entry, dict):
        problems.append(f"{title}: an experiment must be a mapping.")
        return None
    found = len(problems)
    _unknown_keys(entry, _EXPERIMENT_KEYS, title, problems)
    name = entry.get("name")
    if name is not None and not (isinstance(name, str) and name):
        problems.append(f"{title}: 'name' must be a non-empty string.")
    prompt_id = entry.get("prompt_id")
    if not (isinstance(prompt_id, str) and prompt_id):
        problems.append(f"{title}: 'prompt_id' must be a non-empty string (the prompt to split).")
    sticky = entry.get("sticky", "user")
    if not _is_sticky(sticky):
        problems.append(
            f"{title}: 'sticky' is {sticky!r}; write user, none or header:<header name>."
        )
    variants = _parse_variants(entry.get("variants"), title, problems)
    if len(problems) > found or variants is None:
        return None
    return Experiment(prompt_id=str(prompt_id), variants=variants, name=name, sticky=sticky)


def _parse_variants(raw: Any, title: str, problems: list[str]) -> tuple[Variant, ...] | None:
    if not isinstance(raw, list | tuple) or not raw:
        problems.append(
            f"{title}: 'variants' must list at least one variant "
            "({label: …, weight: …} or {version: …, weight: …}; the first is the control)."
        )
        return None
    variants = [
        _parse_variant(item, f"{title}: variants[{i}]", problems) for i, item in enumerate(raw)
    ]
    if any(variant is None for variant in variants):
        return None
    checked = tuple(variant for variant in variants if variant is not None)
    # Added in order, in doubles, as the choice adds them (experiments/choice.py).
    total = sum(variant.weight for variant in checked)
    if total <= 0:
        problems.append(f"{title}: the variants' 'weight' values sum to 0; give one a weight > 0.")
    elif not math.isfinite(total):
        problems.append(
            f"{title}: the variants' 'weight' values sum past the largest number; "
            "use smaller weights (they are relative: 90/10 splits as 0.9/0.1 does)."
        )
    names = [variant.name for variant in checked]
    for repeated in sorted({name for name in names if names.count(name) > 1}):
        key = "version" if repeated.startswith("version-") else "label"
        problems.append(f"{title}: two variants name the same '{key}' ({repeated}).")
    return checked


def _parse_variant(raw: Any, where: str, problems: list[str]) -> Variant | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: a variant must be a mapping such as {{label: …, weight: …}}.")
        return None
    found = len(problems)
    _unknown_keys(raw, _VARIANT_KEYS, where, problems)
    label, version, weight = raw.get("label"), raw.get("version"), raw.get("weight")
    if label is not None and version is not None:
        problems.append(f"{where}: gives both 'label' and 'version'; give one of them.")
    elif label is None and version is None:
        problems.append(f"{where}: needs a 'label' or a 'version'.")
    if label is not None and not (isinstance(label, str) and label):
        problems.append(f"{where}: 'label' must be a non-empty string.")
    if version is not None and not (_is_number(version, int) and version >= 1):
        problems.append(f"{where}: 'version' is {version!r}; it must be an integer >= 1.")
    weight_value = _finite_weight(weight)
    if weight is None:
        problems.append(f"{where}: needs a 'weight' (a number >= 0; 0 switches it off).")
    elif weight_value is None:
        shown = repr(weight) if len(repr(weight)) <= _MAX_SHOWN else f"{repr(weight)[:_MAX_SHOWN]}…"
        problems.append(f"{where}: 'weight' is {shown}; it must be a finite number >= 0.")
    if len(problems) > found or weight_value is None:
        return None
    return Variant(label=label, version=version, weight=weight_value)


def _unknown_keys(raw: dict[Any, Any], known: tuple[str, ...], where: str, out: list[str]) -> None:
    for key in raw:
        if key not in known:
            out.append(f"{where}: unknown key {key!r}; the keys are {', '.join(known)}.")


def _is_number(value: Any, kind: type | tuple[type, ...]) -> bool:
    # YAML's true/false are bools, and bool is an int: neither is a version nor a weight.
    return isinstance(value, kind) and not isinstance(value, bool)


def _finite_weight(value: Any) -> float | None:
    """``value`` as a weight (a finite double >= 0), or None when it cannot be one."""
    if not _is_number(value, (int, float)):
        return None
    try:
        weight = float(value)  # an integer of 400 digits is no double: OverflowError
    except OverflowError:
        return None
    return weight if math.isfinite(weight) and weight >= 0 else None


def _is_sticky(value: Any) -> bool:
    if value in ("user", "none"):
        return True
    return (
        isinstance(value, str)
        and value.startswith(STICKY_HEADER_PREFIX)
        and _is_token(value.removeprefix(STICKY_HEADER_PREFIX)) is not None
    )


def _check_one_per_prompt(raw: list[Any], problems: list[str]) -> None:
    owners: dict[str, list[str]] = {}
    for index, entry in enumerate(raw):
        if isinstance(entry, dict) and isinstance(entry.get("prompt_id"), str):
            owners.setdefault(entry["prompt_id"], []).append(_entry_title(entry, index))
    for prompt_id, titles in owners.items():
        if len(titles) > 1:
            problems.append(
                f"{' and '.join(titles)} are on the same prompt_id {prompt_id!r}; "
                "a prompt takes one experiment at a time."
            )


def _check_unique_names(raw: list[Any], problems: list[str]) -> None:
    # The name (else the prompt_id) seeds the choice and labels the metrics: two experiments
    # sharing one would split their callers alike and add up in /metrics. Two unnamed ones
    # on one prompt are already reported as such.
    named: dict[str, list[bool]] = {}
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        name = entry.get("name")
        explicit = isinstance(name, str) and bool(name)
        title = name if explicit else entry.get("prompt_id")
        if isinstance(title, str) and title:
            named.setdefault(title, []).append(explicit)
    for title, flags in named.items():
        if len(flags) > 1 and any(flags):
            problems.append(
                f"two experiments are called {title!r} (their name, else their prompt_id); "
                "give each a unique 'name'."
            )
