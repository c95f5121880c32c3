"""Resolve: label and version pick the query; remembered resolutions stay bounded and right."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

from prompt_middleware import Settings
from prompt_middleware.engine.resolve import MAX_REMEMBERED as _MAX_REMEMBERED
from prompt_middleware.prompts import PromptQuery
from tests.engine.helpers import (
    EngineFactory,
    EveryNameStore,
    header,
    managed,
)
from tests.fakes.memory import MemoryStore

# --- 3. resolution is remembered but stays correct -----------------------------------------


async def test_label_and_version_of_each_request_pick_the_query(
    make_engine: EngineFactory, store: MemoryStore
) -> None:
    engine = make_engine()
    base = {"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "C"}}
    cases: list[tuple[dict[str, Any], bytes, str, bytes]] = [
        ({}, b"1", "v1 C", b"miss"),
        ({"prompt_label": "staging"}, b"2", "v2 C", b"miss"),
        ({"prompt_version": 1}, b"1", "v1 C", b"miss"),
        ({"prompt_version": "2"}, b"2", "v2 C", b"miss"),
        ({}, b"1", "v1 C", b"hit"),
        ({"prompt_version": 2}, b"2", "v2 C", b"hit"),
        ({"prompt_label": "production"}, b"1", "v1 C", b"hit"),
        ({"prompt_label": "staging"}, b"2", "v2 C", b"hit"),
        ({"prompt_version": 1}, b"1", "v1 C", b"hit"),
    ]
    for pinned, version, content, cache in cases:
        result = await managed(engine, {**base, **pinned})
        seen = (header(result, b"x-prompt-version"), header(result, b"x-prompt-cache"))
        assert seen == (version, cache), pinned
        assert msgspec.json.decode(result.body)["messages"] == [
            {"role": "user", "content": content}
        ]
    assert store.calls == Counter(
        {
            PromptQuery("greeting", label="production"): 1,
            PromptQuery("greeting", label="staging"): 1,
            PromptQuery("greeting", version=1): 1,
            PromptQuery("greeting", version=2): 1,
        }
    )
    assert store.total_calls == 4


async def test_remembered_targets_stay_bounded_and_right(make_engine: EngineFactory) -> None:
    store = EveryNameStore()
    engine = make_engine(stores={"mem": store})
    sizes = []
    for i in range(_MAX_REMEMBERED + 100):
        result = await managed(engine, {"model": "m", "prompt_id": f"p{i}"})
        assert result.prompt is not None
        assert result.prompt.name == f"p{i}"
        # private: the memo under test has no public view
        sizes.append(engine._resolver._remembered_target.cache_info().currsize)
    assert max(sizes) == _MAX_REMEMBERED
    assert store.total_calls == _MAX_REMEMBERED + 100
    first = await managed(engine, {"model": "m", "prompt_id": "p0"})
    assert msgspec.json.decode(first.body)["messages"] == [{"role": "user", "content": "p0"}]


async def test_plans_stay_bounded_by_the_cache_size(make_engine: EngineFactory) -> None:
    # A plan is kept in the cache entry of its prompt: no more plans than cache entries.
    store = EveryNameStore()
    engine = make_engine(Settings(default_store="mem", cache_max_entries=4), stores={"mem": store})
    sizes = []
    for i in range(100):
        result = await managed(engine, {"model": "m", "prompt_id": f"p{i}"})
        assert msgspec.json.decode(result.body)["messages"] == [
            {"role": "user", "content": f"p{i}"}
        ]
        sizes.append(len(engine.cache))
    assert max(sizes) == 4


async def test_remembered_model_splits_stay_bounded_and_right(make_engine: EngineFactory) -> None:
    engine = make_engine()
    sizes = []
    for i in range(_MAX_REMEMBERED + 100):
        result = await engine.rewrite(b'{"model":"mem/m%d"}' % i)
        assert result is not None
        assert (result.body, result.model) == (b'{"model":"m%d"}' % i, f"m{i}")
        # private: the memo under test has no public view
        sizes.append(engine._resolver._store_prefix_of.cache_info().currsize)
    assert max(sizes) == _MAX_REMEMBERED
    again = await engine.rewrite(b'{"model":"mem/m0"}')
    assert again is not None
    assert again.body == b'{"model":"m0"}'
