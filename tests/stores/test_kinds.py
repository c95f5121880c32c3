"""One description per store kind (``stores/kinds.py``): every part reads the same record."""

from __future__ import annotations

import msgspec
import pytest

from prompt_middleware.errors import InvalidPromptRequest
from prompt_middleware.request import decode_body, extension_fields
from prompt_middleware.settings import ModelEntry, Secret, Settings
from prompt_middleware.settings.environment import EnvironmentReader
from prompt_middleware.stores.humanloop import HumanloopStore
from prompt_middleware.stores.kinds import (
    FILE,
    HUMANLOOP,
    KNOWN_STORES,
    LANGFUSE,
    STORE_ALIASES,
    STORE_KINDS,
    StoreKind,
    kind_of,
)
from prompt_middleware.stores.langfuse import LangfuseStore
from prompt_middleware.stores.registry import StoreRegistry


def test_the_fields_a_kind_names_exist() -> None:
    settings_fields = {field.name for field in msgspec.structs.fields(Settings)}
    entry_fields = {field.name for field in msgspec.structs.fields(ModelEntry)}
    for kind in STORE_KINDS:
        named = {*kind.environment, *kind.secret_settings}
        if kind.base_url_setting:
            named.add(kind.base_url_setting)
        assert named <= settings_fields, kind.prefix
        entry_named = {*kind.entry_secrets, *kind.entry_keys.values()}
        if kind.entry_base_url:
            entry_named.add(kind.entry_base_url)
        assert entry_named <= entry_fields, kind.prefix


def test_prefixes_and_aliases() -> None:
    assert {"file", "dotprompt", "langfuse", "humanloop"} == KNOWN_STORES
    assert STORE_ALIASES == {"dotprompt": "file"}
    assert kind_of("dotprompt") is FILE
    assert kind_of("langfuse") is LANGFUSE
    assert kind_of("mine") is None


def test_the_environment_variables_come_from_the_kinds() -> None:
    reader = EnvironmentReader(msgspec.structs.fields(Settings))
    values = reader.read(
        {"LANGFUSE_HOST": "http://127.0.0.1:1", "HUMANLOOP_API_KEY": "hl", "LANGFUSE_URL": "x"}
    )
    assert set(values) == {"langfuse_base_url", "humanloop_api_key"}


def test_the_decoder_takes_out_each_kind_request_prefix() -> None:
    fields = decode_body(b'{"langfuse_a":1,"humanloop_b":2,"other_c":3}')
    prefixes = tuple(kind.request_prefix for kind in STORE_KINDS if kind.request_prefix)
    assert set(prefixes) == {"langfuse_", "humanloop_"}
    assert extension_fields(fields) == ((), ("langfuse_a", "humanloop_b"))


async def test_the_factories_build_each_remote_store() -> None:
    settings = Settings(
        langfuse_public_key="pk", langfuse_secret_key=Secret("sk"), humanloop_api_key=Secret("hl")
    )
    registry = StoreRegistry(settings)
    try:
        assert isinstance(registry.resolve("langfuse").store, LangfuseStore)
        assert isinstance(registry.resolve("humanloop").store, HumanloopStore)
    finally:
        await registry.aclose()


@pytest.mark.parametrize("kind", [LANGFUSE, HUMANLOOP], ids=lambda kind: kind.prefix)
async def test_an_unconfigured_kind_says_how_to_configure_it(kind: StoreKind) -> None:
    registry = StoreRegistry(Settings())
    try:
        with pytest.raises(InvalidPromptRequest) as raised:
            registry.resolve(kind.prefix)
    finally:
        await registry.aclose()
    assert kind.how_to_configure in str(raised.value)
