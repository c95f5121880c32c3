"""Experiments in the engine: which requests they apply to, the variant served, the fallback."""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog

from prompt_middleware.engine import RewriteEngine, RewriteResult
from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable
from prompt_middleware.experiments import Experiment, Variant
from prompt_middleware.prompts import PromptQuery
from prompt_middleware.settings import ModelEntry, Settings
from tests.engine.helpers import RecordingObserver
from tests.fakes.memory import MemoryStore, text_prompt

EXPERIMENT = Experiment(
    name="tone",
    prompt_id="greet",
    variants=(Variant(label="production", weight=50), Variant(version=3, weight=50)),
)


class PickyStore(MemoryStore):
    """A memory store that fails (``failure``) for one query only."""

    def __init__(self, failing: PromptQuery | None, failure: Exception) -> None:
        super().__init__(
            text_prompt("greet", "Hello", version=1, labels=("production",)),
            text_prompt("greet", "Hi there", version=3, labels=("candidate",)),
        )
        self.failing, self.failing_with = failing, failure

    async def get_prompt(self, query: PromptQuery) -> Any:
        if query == self.failing:
            self.calls[query] += 1
            raise self.failing_with
        return await super().get_prompt(query)


def engine(
    store: MemoryStore | None = None,
    experiment: Experiment = EXPERIMENT,
    observer: RecordingObserver | None = None,
    **settings: Any,
) -> RewriteEngine:
    return RewriteEngine(
        Settings(experiments=(experiment,), **settings),
        stores={"mem": store or PickyStore(None, PromptNotFound("x"))},
        observer=observer,
    )


async def rewrite(eng: RewriteEngine, body: dict[str, Any], headers: Any = ()) -> RewriteResult:
    result = await eng.rewrite(json.dumps({"model": "mem/m", **body}).encode(), headers)
    assert result is not None
    return result


def users_on(variant: str, count: int = 2) -> list[str]:
    split = engine()._resolver._experiment_of("greet")
    assert split is not None
    found = [u for u in (f"user-{n}" for n in range(100)) if split.choose(u).name == variant]
    return found[:count]


async def test_a_user_gets_their_variant_its_header_and_the_result_names_it() -> None:
    eng = engine()
    (control_user,) = users_on("production", 1)
    (candidate_user,) = users_on("version-3", 1)
    control = await rewrite(eng, {"prompt_id": "greet", "user": control_user})
    candidate = await rewrite(eng, {"prompt_id": "greet", "user": candidate_user})
    assert json.loads(control.body)["messages"][0]["content"] == "Hello"
    assert json.loads(candidate.body)["messages"][0]["content"] == "Hi there"
    assert dict(control.headers)[b"x-prompt-variant"] == b"production"
    assert dict(candidate.headers)[b"x-prompt-variant"] == b"version-3"
    assert dict(candidate.headers)[b"x-prompt-version"] == b"3"
    assert (candidate.experiment, candidate.variant) == ("tone", "version-3")
    assert (control.experiment, control.variant) == ("tone", "production")


async def test_one_user_sent_100_times_gets_one_variant() -> None:
    eng = engine()
    for user in ("alice", "bob"):
        variants = {(await rewrite(eng, {"prompt_id": "greet", "user": user})).variant}
        for _ in range(99):
            variants.add((await rewrite(eng, {"prompt_id": "greet", "user": user})).variant)
        assert len(variants) == 1


@pytest.mark.parametrize("pin", [{"prompt_label": "candidate"}, {"prompt_version": 1}])
async def test_a_body_naming_a_label_or_version_skips_the_experiment(pin: dict[str, Any]) -> None:
    eng = engine()
    for user in (*users_on("production"), *users_on("version-3")):
        result = await rewrite(eng, {"prompt_id": "greet", "user": user, **pin})
        assert result.variant is None
        assert result.experiment is None
        assert b"x-prompt-variant" not in dict(result.headers)
        expected = b"3" if "prompt_label" in pin else b"1"
        assert dict(result.headers)[b"x-prompt-version"] == expected


async def test_another_prompt_is_untouched() -> None:
    store = PickyStore(None, PromptNotFound("x"))
    store.put(text_prompt("other", "Other", labels=("production",)))
    result = await rewrite(engine(store), {"prompt_id": "other", "user": "u"})
    assert result.variant is None
    assert b"x-prompt-variant" not in dict(result.headers)


async def test_it_applies_to_a_prompt_named_by_a_model_list_entry_over_the_entrys_label() -> None:
    entry = ModelEntry(model_name="bot", model="mem/m", prompt_id="greet", prompt_label="candidate")
    eng = engine(model_list=(entry,))
    (user,) = users_on("production", 1)
    result = await eng.rewrite(json.dumps({"model": "bot", "user": user}).encode())
    assert result is not None
    assert result.variant == "production"
    assert dict(result.headers)[b"x-prompt-version"] == b"1"


async def test_a_header_keyed_experiment_reads_the_header_ascii_or_raw() -> None:
    keyed = Experiment(
        name="tone", prompt_id="greet", variants=EXPERIMENT.variants, sticky="header:X-User-Id"
    )
    eng = engine(experiment=keyed)
    (user,) = users_on("version-3", 1)
    by_asgi = await rewrite(eng, {"prompt_id": "greet"}, [(b"x-user-id", user.encode())])
    by_httpx = await rewrite(eng, {"prompt_id": "greet"}, [(b"X-User-Id", user.encode())])
    assert by_asgi.variant == by_httpx.variant == "version-3"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (PromptNotFound("Prompt 'greet' version 3 not found."), "prompt_not_found"),
        (PromptStoreUnavailable("down"), "prompt_store_unavailable"),
    ],
)
async def test_a_candidate_that_cannot_be_served_falls_back_to_the_control(
    failure: Exception, reason: str
) -> None:
    store = PickyStore(PromptQuery("greet", version=3), failure)
    observer = RecordingObserver()
    eng = engine(store, observer=observer)
    users = users_on("version-3", 3)
    with structlog.testing.capture_logs() as logs:
        results = [await rewrite(eng, {"prompt_id": "greet", "user": u}) for u in users]
    for result in results:
        assert json.loads(result.body)["messages"][0]["content"] == "Hello"
        assert dict(result.headers)[b"x-prompt-variant"] == b"production"
        assert result.variant == "production"
    assert eng.experiment_fallbacks.counts[("tone", "version-3")] == 3
    assert observer.experiments.count(("tone", "version-3", True)) == 3
    warnings = [e for e in logs if e["event"] == "experiment_control_fallback"]
    assert len(warnings) == 1  # at most once a minute per experiment
    assert (warnings[0]["variant"], warnings[0]["reason"]) == ("version-3", reason)


async def test_a_failing_control_is_the_clients_error() -> None:
    store = PickyStore(PromptQuery("greet", label="production"), PromptStoreUnavailable("down"))
    eng = engine(store)
    (user,) = users_on("production", 1)
    with pytest.raises(PromptStoreUnavailable):
        await rewrite(eng, {"prompt_id": "greet", "user": user})
    assert not eng.experiment_fallbacks.counts


async def test_a_candidate_falling_back_to_a_failing_control_is_the_clients_error() -> None:
    store = PickyStore(PromptQuery("greet", version=3), PromptNotFound("gone"))
    store.prompts = [p for p in store.prompts if p.version != 1]  # no control either
    eng = engine(store)
    (user,) = users_on("version-3", 1)
    with pytest.raises(PromptNotFound):
        await rewrite(eng, {"prompt_id": "greet", "user": user})
