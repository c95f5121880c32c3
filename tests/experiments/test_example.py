"""``examples/experiments/``: its config loads, and the users its README names land as it says."""

from __future__ import annotations

from pathlib import Path

import yaml

from prompt_middleware.experiments import ExperimentIndex, parse_experiments
from prompt_middleware.prompts import PromptQuery
from prompt_middleware.stores.local import LocalPromptStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "experiments"


def test_the_examples_experiment_sends_alice_to_production_and_ada_to_candidate() -> None:
    document = yaml.safe_load((EXAMPLE / "config.yaml").read_text(encoding="utf-8"))
    index = ExperimentIndex(parse_experiments(document["experiments"]))
    split = index.get("support/answer")
    assert split is not None
    assert split.name == "support-tone"
    assert split.choose("alice").name == "production"
    assert split.choose("ada").name == "candidate"


async def test_the_examples_prompt_folder_has_both_labels() -> None:
    store = LocalPromptStore(EXAMPLE / "prompts")
    try:
        production = await store.get_prompt(PromptQuery("support/answer", label="production"))
        candidate = await store.get_prompt(PromptQuery("support/answer", label="candidate"))
    finally:
        await store.aclose()
    assert (production.version, candidate.version) == (1, 2)
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    assert '"user": "alice"' in readme
    assert '"user": "ada"' in readme
