"""Resolve: label and version pick the query; remembered resolutions stay bounded and right."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
import pytest

from prompt_middleware import Settings
from prompt_middleware.engine.resolve import MAX_REMEMBERED as _MAX_REMEMBERED
from prompt_middleware.engine.resolve import Resolver
from prompt_middleware.errors import InvalidPromptRequest
from prompt_middleware.prompts import DEFAULT_LABEL, PromptQuery
from prompt_middleware.request import decode_body
from prompt_middleware.settings import ModelEntry, PromptBinding
from prompt_middleware.stores.registry import StoreRegistry
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


# --- the Resolver on its own: fields + settings -> one Resolution ---------------------------


def resolver(settings: Settings, store: MemoryStore) -> Resolver:
    return Resolver(settings, StoreRegistry(settings, stores={"mem": store}))


def test_an_unmanaged_request_resolves_to_nothing(store: MemoryStore) -> None:
    resolve = resolver(Settings(default_store="mem"), store).resolve
    assert resolve(decode_body(b'{"model":"gpt-4o","messages":[]}')) is None


def test_a_store_prefix_names_the_store_and_leaves_the_bare_model(store: MemoryStore) -> None:
    resolution = resolver(Settings(), store).resolve(
        decode_body(b'{"model":"mem/openai/gpt-4o","prompt_id":"chat"}')
    )
    assert resolution is not None
    assert resolution.model == "gpt-4o"
    assert resolution.target is not None
    assert resolution.target.binding.prefix == "mem"
    assert resolution.target.query == PromptQuery("chat", label=DEFAULT_LABEL)
    assert resolution.target.store_header == (b"x-prompt-store", b"mem")


def test_a_model_list_entry_gives_prompt_label_and_its_fields_are_taken_out(
    store: MemoryStore,
) -> None:
    entry = ModelEntry(
        model_name="bot", model="mem/openai/gpt-4o", prompt_id="greeting", prompt_label="staging"
    )
    resolution = resolver(Settings(model_list=(entry,)), store).resolve(
        decode_body(b'{"model":"bot","prompt_variables":{},"langfuse_x":1}')
    )
    assert resolution is not None
    assert (resolution.entry, resolution.model) == (entry, "gpt-4o")
    assert (resolution.extensions, resolution.prefixed) == (("prompt_variables",), ("langfuse_x",))
    assert resolution.target is not None
    assert resolution.target.query == PromptQuery("greeting", label="staging")


def test_without_a_prompt_there_is_no_target_and_prompt_fields_are_refused(
    store: MemoryStore,
) -> None:
    resolve = resolver(Settings(), store).resolve
    resolution = resolve(decode_body(b'{"model":"mem/gpt-4o"}'))
    assert resolution is not None
    assert (resolution.model, resolution.target) == ("gpt-4o", None)
    with pytest.raises(InvalidPromptRequest, match="prompt_label given without prompt_id"):
        resolve(decode_body(b'{"model":"mem/gpt-4o","prompt_label":"x"}'))


def test_label_and_version_together_are_refused(store: MemoryStore) -> None:
    with pytest.raises(InvalidPromptRequest, match="not both") as raised:
        resolver(Settings(default_store="mem"), store).resolve(
            decode_body(b'{"prompt_id":"p","prompt_label":"a","prompt_version":2}')
        )
    assert raised.value.param == "prompt_version"


def test_a_prompts_binding_says_whether_the_prompt_model_and_params_apply(
    store: MemoryStore,
) -> None:
    binding = PromptBinding(
        prompt_id="bound",
        integration="dotprompt",
        ignore_prompt_manager_model=True,
        ignore_prompt_manager_optional_params=True,
    )
    resolution = resolver(Settings(default_store="mem", prompts=(binding,)), store).resolve(
        decode_body(b'{"model":"gpt-4o","prompt_id":"bound"}')
    )
    assert resolution is not None
    assert resolution.target is not None
    assert resolution.target.binding.prefix == "file"
    assert (resolution.target.use_prompt_model, resolution.target.use_prompt_params) == (
        False,
        False,
    )
