"""The records of an experiment, as the config file's ``experiments:`` section writes them.

An experiment splits the traffic of one managed prompt between variants: labels or versions
of that prompt in its store, the first variant being the control. These records are plain
settings; :mod:`prompt_middleware.experiments.validate` checks them and
:mod:`prompt_middleware.experiments.choice` turns them into what a request reads.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["STICKY_HEADER_PREFIX", "Experiment", "Variant"]

STICKY_HEADER_PREFIX: Final = "header:"


class Variant(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One arm of an experiment: a label *or* a version of the prompt, and its weight.

    Weights are relative (``90``/``10`` and ``0.9``/``0.1`` split alike); weight 0 switches
    the variant off.
    """

    label: str | None = None
    version: int | None = None
    weight: float

    @property
    def name(self) -> str:
        """What ``x-prompt-variant``, the log line and the metrics call it."""
        return self.label if self.label is not None else f"version-{self.version}"


class Experiment(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An ``experiments:`` entry: ``prompt_id`` split between ``variants``.

    ``variants[0]`` is the control, served whenever another variant cannot be. ``sticky``
    says where the key that keeps a caller on one variant comes from: ``user`` (the body's
    ``user`` field), ``header:<name>`` (a request header), or ``none`` (a new draw per
    request). ``name`` (default: the ``prompt_id``) seeds the choice: renaming an experiment
    reshuffles its callers.
    """

    prompt_id: str
    variants: tuple[Variant, ...]
    name: str | None = None
    sticky: str = "user"

    @property
    def title(self) -> str:
        """The experiment's name, else its ``prompt_id``: how logs, metrics and errors name it."""
        return self.name if self.name is not None else self.prompt_id

    @property
    def sticky_header(self) -> str | None:
        """The (lower-case) header that holds the sticky key, when ``sticky`` names one."""
        if self.sticky.startswith(STICKY_HEADER_PREFIX):
            return self.sticky.removeprefix(STICKY_HEADER_PREFIX).lower()
        return None
