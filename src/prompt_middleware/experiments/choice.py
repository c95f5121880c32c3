"""Which variant a request gets: the choice function, and the index the engine reads.

The choice, exactly (so that a data team can recompute any caller's variant offline):

1. ``key`` is the sticky key as bytes: the request's ``user`` field encoded as UTF-8, or
   the sticky header's value as it arrived.
2. ``digest = SHA-256(name_utf8 + b":" + key)`` where ``name`` is the experiment's
   ``name`` (its ``prompt_id`` when unnamed).
3. ``point = int.from_bytes(digest[:8], "big") / 2**64``: a point in [0, 1), a
   double-precision division.
4. ``target = point * total``, where ``total`` is the sum of the weights, added in order.
5. With ``cumulative[i] = weights[0] + … + weights[i]`` (in order, in doubles), the variant
   is the first ``i`` with ``target < cumulative[i]``; should rounding put ``target`` at
   ``total`` itself, the last variant with a positive weight. A variant of weight 0 never
   satisfies the rule, so it is never chosen.

In Python: ``bisect.bisect_right(cumulative, point * total)``. Without a key (or with
``sticky: none``) ``point`` is ``random.random()`` instead: weighted random per request.
The same key gets the same variant on every replica, worker and restart while the name and
the weights are unchanged; changing a weight moves only the callers whose point falls in
the bands that moved.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from hashlib import sha256
from itertools import accumulate
from struct import Struct
from typing import Final

from prompt_middleware.experiments.records import Experiment, Variant
from prompt_middleware.experiments.validate import validate_experiments
from prompt_middleware.header_values import header_value

__all__ = ["Arm", "ExperimentIndex", "Split", "point_for_key"]

_TWO_TO_64: Final = float(2**64)
# The first 8 bytes of the digest as a big-endian unsigned integer (no slice copy).
_first_eight_bytes: Final = Struct(">Q").unpack_from


def point_for_key(experiment_name: str, key: str | bytes) -> float:
    """Steps 1 to 3 of the module docstring: where ``key`` falls in [0, 1)."""
    return _point(_seed(experiment_name), key)


def _seed(experiment_name: str) -> bytes:
    return experiment_name.encode("utf-8") + b":"


def _point(seed: bytes, key: str | bytes) -> float:
    data = key if isinstance(key, bytes) else key.encode("utf-8", "surrogatepass")
    high: int = _first_eight_bytes(sha256(seed + data).digest())[0]
    return high / _TWO_TO_64


class Arm:
    """One variant as a request reads it: what to fetch and what the response shows."""

    __slots__ = ("header", "is_control", "label", "name", "variant", "version")

    def __init__(self, variant: Variant, *, is_control: bool) -> None:
        self.variant = variant
        self.label = variant.label
        self.version = variant.version
        self.name = variant.name
        self.is_control = is_control
        self.header = (b"x-prompt-variant", header_value(self.name))

    def __repr__(self) -> str:
        return f"Arm({self.name!r})"


class Split:
    """One experiment, worked out once: its arms, bands and sticky key source."""

    __slots__ = (
        "_cumulative",
        "_last_positive",
        "_random",
        "_seed",
        "_total",
        "arms",
        "control",
        "experiment",
        "name",
        "reads_user",
        "sticky_header",
    )

    def __init__(self, experiment: Experiment, rand: Callable[[], float] = random.random) -> None:
        self.experiment = experiment
        self.name = experiment.title
        self.arms = tuple(
            Arm(variant, is_control=index == 0) for index, variant in enumerate(experiment.variants)
        )
        self.control = self.arms[0]
        self.reads_user = experiment.sticky == "user"
        header = experiment.sticky_header
        #: The lower-case header name that holds the key, as ASGI spells header names.
        self.sticky_header = header.encode("latin-1") if header is not None else None
        self._cumulative = tuple(accumulate(variant.weight for variant in experiment.variants))
        self._total = self._cumulative[-1]
        self._last_positive = max(i for i, v in enumerate(experiment.variants) if v.weight > 0)
        self._seed = _seed(experiment.title)
        self._random = rand

    def choose(self, key: str | bytes | None) -> Arm:
        """The arm for a sticky ``key``; a weighted random one when there is no key."""
        point = self._random() if key is None else _point(self._seed, key)
        index = bisect_right(self._cumulative, point * self._total)
        return self.arms[index if index < len(self.arms) else self._last_positive]


class ExperimentIndex:
    """The experiments by ``prompt_id``, checked and worked out once at start-up.

    ``get(prompt_id)`` is a bound ``dict.get``: a prompt without an experiment costs one
    lookup, and a caller that tests ``if index:`` first costs nothing when there are none.
    """

    __slots__ = ("_by_prompt", "get", "sticky_headers")

    def __init__(
        self, experiments: Iterable[Experiment] = (), *, rand: Callable[[], float] = random.random
    ) -> None:
        records = validate_experiments(experiments)
        self._by_prompt = {experiment.prompt_id: Split(experiment, rand) for experiment in records}
        self.get: Callable[[str], Split | None] = self._by_prompt.get
        #: Every header a sticky key is read from: the only ones a door needs to pass on.
        self.sticky_headers = frozenset(
            split.sticky_header for split in self._by_prompt.values() if split.sticky_header
        )

    def __bool__(self) -> bool:
        return bool(self._by_prompt)

    def __len__(self) -> int:
        return len(self._by_prompt)

    def __iter__(self) -> Iterator[Split]:
        return iter(self._by_prompt.values())
