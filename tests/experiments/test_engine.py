"""Experiments in the engine: which requests they apply to, the variant served, the fallback."""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog

from prompt_middleware.cache import PromptCache
from prompt_middleware.engine import RewriteEngine, RewriteResult
from prompt_middleware.errors import PromptNotFound, PromptStoreUnavailable
from prompt_middleware.experiments import ControlFallbacks, Experiment, Split, Variant
from prompt_middleware.live.apply import applier
from prompt_middleware.live.bus import Invalidation
from prompt_middleware.prompts import PromptQuery
from prompt_middleware.settings import ModelEntry, Settings
from tests.engine.helpers import RecordingObserver
from tests.fakes.clock import FakeClock
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
    clock: FakeClock | None = None,
    **settings: Any,
) -> RewriteEngine:
    return RewriteEngine(
        Settings(experiments=(experiment,), **settings),
        stores={"mem": store or PickyStore(None, PromptNotFound("x"))},
        observer=observer,
        # One clock for the cache and the fallbacks, as in the engine: both remember failures.
        cache=PromptCache(clock=clock) if clock is not None else None,
        fallbacks=ControlFallbacks(clock=clock) if clock is not None else None,
    )


async def rewrite(eng: RewriteEngine, body: dict[str, Any], headers: Any = ()) -> RewriteResult:
    result = await eng.rewrite(json.dumps({"model": "mem/m", **body}).encode(), headers)
    assert result is not None
    return result


def users_on(variant: str, count: int = 2) -> list[str]:
    split = Split(EXPERIMENT)  # the documented choice, as a data team would recompute it
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
    assert (candidate.experiment_name, candidate.variant_name) == ("tone", "version-3")
    assert (control.experiment_name, control.variant_name) == ("tone", "production")


async def test_one_user_sent_100_times_gets_one_variant() -> None:
    eng = engine()
    for user in ("alice", "bob"):
        variants = {(await rewrite(eng, {"prompt_id": "greet", "user": user})).variant_name}
        for _ in range(99):
            variants.add((await rewrite(eng, {"prompt_id": "greet", "user": user})).variant_name)
        assert len(variants) == 1


@pytest.mark.parametrize("pin", [{"prompt_label": "candidate"}, {"prompt_version": 1}])
async def test_a_body_naming_a_label_or_version_skips_the_experiment(pin: dict[str, Any]) -> None:
    eng = engine()
    for user in (*users_on("production"), *users_on("version-3")):
        result = await rewrite(eng, {"prompt_id": "greet", "user": user, **pin})
        assert result.variant_name is None
        assert result.experiment_name is None
        assert b"x-prompt-variant" not in dict(result.headers)
        expected = b"3" if "prompt_label" in pin else b"1"
        assert dict(result.headers)[b"x-prompt-version"] == expected


@pytest.mark.parametrize("null", ["prompt_label", "prompt_version"])
async def test_a_label_or_version_sent_as_null_names_nothing_the_experiment_applies(
    null: str,
) -> None:
    # What the OpenAI SDK sends for extra_body={"prompt_label": None}.
    eng = engine()
    (user,) = users_on("version-3", 1)
    result = await rewrite(eng, {"prompt_id": "greet", "user": user, null: None})
    assert (result.experiment_name, result.variant_name) == ("tone", "version-3")
    assert dict(result.headers)[b"x-prompt-variant"] == b"version-3"
    assert "prompt_label" not in json.loads(result.body)
    assert null not in json.loads(result.body)


async def test_another_prompt_is_untouched() -> None:
    store = PickyStore(None, PromptNotFound("x"))
    store.put(text_prompt("other", "Other", labels=("production",)))
    result = await rewrite(engine(store), {"prompt_id": "other", "user": "u"})
    assert result.variant_name is None
    assert b"x-prompt-variant" not in dict(result.headers)


async def test_it_applies_to_a_prompt_named_by_a_model_list_entry_over_the_entrys_label() -> None:
    entry = ModelEntry(model_name="bot", model="mem/m", prompt_id="greet", prompt_label="candidate")
    eng = engine(model_list=(entry,))
    (user,) = users_on("production", 1)
    result = await eng.rewrite(json.dumps({"model": "bot", "user": user}).encode())
    assert result is not None
    assert result.variant_name == "production"
    assert dict(result.headers)[b"x-prompt-version"] == b"1"


async def test_a_header_keyed_experiment_reads_the_header_ascii_or_raw() -> None:
    keyed = Experiment(
        name="tone", prompt_id="greet", variants=EXPERIMENT.variants, sticky="header:X-User-Id"
    )
    eng = engine(experiment=keyed)
    (user,) = users_on("version-3", 1)
    by_asgi = await rewrite(eng, {"prompt_id": "greet"}, [(b"x-user-id", user.encode())])
    by_httpx = await rewrite(eng, {"prompt_id": "greet"}, [(b"X-User-Id", user.encode())])
    assert by_asgi.variant_name == by_httpx.variant_name == "version-3"


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
        assert result.variant_name == "production"
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


def cache_header(result: RewriteResult) -> bytes:
    return dict(result.headers)[b"x-prompt-cache"]


@pytest.mark.parametrize(
    "failure", [PromptNotFound("no version 3"), PromptStoreUnavailable("down")]
)
async def test_a_failed_candidate_is_asked_once_then_its_requests_go_to_the_control_at_once(
    failure: Exception,
) -> None:
    candidate = PromptQuery("greet", version=3)
    store = PickyStore(candidate, failure)
    clock = FakeClock()
    eng = engine(store, clock=clock)
    await rewrite(eng, {"prompt_id": "greet", "user": users_on("production", 1)[0]})
    users = users_on("version-3", 4)

    first = await rewrite(eng, {"prompt_id": "greet", "user": users[0]})
    # It waited for the candidate's store: a miss, though the control was in the cache.
    assert (first.variant_name, first.waited, cache_header(first)) == ("production", True, b"miss")
    assert store.calls[candidate] == 1

    clock.advance(4.9)  # within 5 s of the failed call's end
    for user in users[1:]:
        result = await rewrite(eng, {"prompt_id": "greet", "user": user})
        assert json.loads(result.body)["messages"][0]["content"] == "Hello"
        assert dict(result.headers)[b"x-prompt-variant"] == b"production"
        assert (result.waited, cache_header(result)) == (False, b"hit")
    assert store.calls[candidate] == 1  # not asked again
    assert eng.experiment_fallbacks.counts[("tone", "version-3")] == 4  # each one counted

    clock.advance(0.1)  # the retry time: asked once more, and served now that it is back
    store.failing = None
    result = await rewrite(eng, {"prompt_id": "greet", "user": users[0]})
    assert (result.variant_name, cache_header(result)) == ("version-3", b"miss")
    assert store.calls[candidate] == 2


async def test_a_failed_candidate_is_asked_again_after_the_ttl_when_shorter_than_5_s() -> None:
    candidate = PromptQuery("greet", version=3)
    store = PickyStore(candidate, PromptStoreUnavailable("down"))
    clock = FakeClock()
    eng = engine(store, clock=clock, cache_ttl_seconds=2.0)
    (user,) = users_on("version-3", 1)
    await rewrite(eng, {"prompt_id": "greet", "user": user})
    clock.advance(1.9)
    await rewrite(eng, {"prompt_id": "greet", "user": user})
    assert store.calls[candidate] == 1
    clock.advance(0.1)
    await rewrite(eng, {"prompt_id": "greet", "user": user})
    assert store.calls[candidate] == 2


async def test_a_failed_candidate_whose_control_is_not_cached_says_how_the_control_came() -> None:
    candidate = PromptQuery("greet", version=3)
    store = PickyStore(candidate, PromptNotFound("gone"))
    eng = engine(store, clock=FakeClock())
    first, second = users_on("version-3", 2)
    waited = await rewrite(eng, {"prompt_id": "greet", "user": first})
    at_once = await rewrite(eng, {"prompt_id": "greet", "user": second})
    assert (waited.waited, cache_header(waited)) == (True, b"miss")
    assert (at_once.waited, cache_header(at_once)) == (False, b"hit")
    assert store.calls == {candidate: 1, PromptQuery("greet", label="production"): 1}


async def test_a_candidate_whose_store_failure_the_cache_remembers_is_not_waited_for() -> None:
    # A request that pinned the candidate met the failing store first: the cache remembers
    # the failure, and the experiment's next candidate request goes to the control at once.
    candidate = PromptQuery("greet", version=3)
    store = PickyStore(candidate, PromptStoreUnavailable("down"))
    eng = engine(store, clock=FakeClock())
    await rewrite(eng, {"prompt_id": "greet", "user": users_on("production", 1)[0]})
    with pytest.raises(PromptStoreUnavailable):
        await rewrite(eng, {"prompt_id": "greet", "prompt_version": 3})
    result = await rewrite(eng, {"prompt_id": "greet", "user": users_on("version-3", 1)[0]})
    assert (result.variant_name, result.waited, cache_header(result)) == (
        "production",
        False,
        b"hit",
    )
    assert store.calls[candidate] == 1


async def test_an_invalidation_forgets_a_candidate_remembered_as_not_found() -> None:
    # A candidate published just after it was found missing: the webhook or /cache/invalidate
    # that announces it makes the next request ask the store again, not 5 s later.
    candidate = PromptQuery("greet", version=3)
    store = PickyStore(candidate, PromptNotFound("no version 3"))
    clock = FakeClock()
    eng = engine(store, clock=clock)
    (user,) = users_on("version-3", 1)
    await rewrite(eng, {"prompt_id": "greet", "user": user})
    assert store.calls[candidate] == 1

    store.failing = None
    applier(eng)(Invalidation(store=None, prompt="greet"))
    result = await rewrite(eng, {"prompt_id": "greet", "user": user})
    assert (result.variant_name, cache_header(result)) == ("version-3", b"miss")
    assert store.calls[candidate] == 2
