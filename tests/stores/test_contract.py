"""What every prompt store promises (README "Prompt stores"), checked against each of them.

Every store: a name with the default label, a label, a version (or a clear refusal where the
service has no version numbers), a missing prompt is :class:`PromptNotFound`, a failing store
is :class:`PromptStoreUnavailable`, and ``aclose`` leaves nothing open. The HTTP stores also
route every request through ``stores/_http.py`` (tested once in ``test_http.py``); the tests
at the end check that each one does.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import respx

from prompt_middleware.errors import (
    ConfigurationError,
    InvalidPromptRequest,
    PromptNotFound,
    PromptStoreUnavailable,
)
from prompt_middleware.prompts import Prompt, PromptQuery
from prompt_middleware.stores import LocalPromptStore, PromptStore
from tests.fakes.memory import MemoryStore, text_prompt, unavailable
from tests.stores.kinds import GENERIC, HUMANLOOP, LANGFUSE, HttpKind

# --- the stores, each holding "greeting": version 1 is production, version 2 is staging ----


@dataclass
class Subject:
    name: str
    store: PromptStore
    break_store: Callable[[], None]  # from now on, the store's backend fails
    labels: bool = True  # the store serves labels other than the default one
    versions: bool = True  # the store serves version numbers
    query_of: Callable[[str], str] = str  # the prompt id a request gives for a name


def local_subject(folder: Path) -> Subject:
    (folder / "greeting.yaml").write_text(
        "- {version: 1, prompt: Hello v1, labels: [production]}\n"
        "- {version: 2, prompt: Hello v2, labels: [staging]}\n"
    )
    return Subject(
        "local",
        LocalPromptStore(folder, poll_interval=0),
        lambda: shutil.rmtree(folder),
    )


def memory_subject() -> Subject:
    store = MemoryStore(
        text_prompt("greeting", "Hello v1", version=1, labels=["production"]),
        text_prompt("greeting", "Hello v2", version=2, labels=["staging"]),
    )

    def break_store() -> None:
        store.failure = unavailable()

    return Subject("memory", store, break_store)


def langfuse_subject(client: httpx2.AsyncClient, fake: Any) -> Subject:
    fake.add_prompt("greeting", "Hello v1", labels=["production"])
    fake.add_prompt("greeting", "Hello v2", labels=["staging"])
    return Subject("langfuse", LANGFUSE.make_store(client), lambda: _fail(fake))


def humanloop_subject(client: httpx2.AsyncClient, fake: Any) -> Subject:
    fake.add_prompt("greeting", "Hello v1", deploy_to=["production"])
    fake.add_prompt("greeting", "Hello v2", deploy_to=["staging"])
    return Subject(
        "humanloop",
        HUMANLOOP.make_store(client),
        lambda: _fail(fake),
        versions=False,  # Humanloop versions are ids, not numbers
        query_of=lambda name: str(fake.prompt_id(name)),
    )


def generic_subject(client: httpx2.AsyncClient, fake: Any) -> Subject:
    fake.add_prompt("greeting", [{"role": "user", "content": "Hello v1"}])
    return Subject(
        "generic",
        GENERIC.make_store(client),
        lambda: _fail(fake),
        labels=False,  # the service has neither labels nor versions
        versions=False,
    )


def _fail(fake: Any) -> None:
    fake.fail_with = 503


_HTTP_SUBJECTS = {
    "langfuse": (LANGFUSE, langfuse_subject),
    "humanloop": (HUMANLOOP, humanloop_subject),
    "generic": (GENERIC, generic_subject),
}


@pytest.fixture(params=["local", "memory", "langfuse", "humanloop", "generic"])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Subject]:
    name: str = request.param
    if name == "local":
        yield local_subject(tmp_path)
    elif name == "memory":
        yield memory_subject()
    else:
        kind, make = _HTTP_SUBJECTS[name]
        fake = kind.make_fake()
        transport = httpx2.ASGITransport(app=fake.app)
        async with httpx2.AsyncClient(transport=transport) as client:
            yield make(client, fake)


def text_of(prompt: Prompt) -> str:
    if isinstance(prompt.prompt, str):
        return prompt.prompt
    message = prompt.prompt[-1]
    return str(getattr(message, "content", ""))


async def get(subject: Subject, name: str, **query: Any) -> Prompt:
    return await subject.store.get_prompt(PromptQuery(subject.query_of(name), **query))


# --- every store ---------------------------------------------------------------------------


def test_is_a_prompt_store(subject: Subject) -> None:
    assert isinstance(subject.store, PromptStore)


@pytest.mark.parametrize("label", [None, "production"])
async def test_a_name_alone_is_the_default_label(subject: Subject, label: str | None) -> None:
    assert text_of(await get(subject, "greeting", label=label)) == "Hello v1"


async def test_by_label(subject: Subject) -> None:
    if subject.labels:
        assert text_of(await get(subject, "greeting", label="staging")) == "Hello v2"
        return
    with pytest.raises(InvalidPromptRequest) as caught:
        await get(subject, "greeting", label="staging")
    assert caught.value.param == "prompt_label"


async def test_by_version(subject: Subject) -> None:
    if subject.versions:
        prompt = await get(subject, "greeting", version=2)
        assert (text_of(prompt), prompt.version) == ("Hello v2", 2)
        return
    with pytest.raises(InvalidPromptRequest) as caught:
        await get(subject, "greeting", version=2)
    assert (caught.value.param, caught.value.status_code) == ("prompt_version", 400)


async def test_not_found(subject: Subject) -> None:
    with pytest.raises(PromptNotFound) as caught:
        await subject.store.get_prompt(PromptQuery("missing"))

    assert caught.value.status_code == 404
    assert caught.value.param == "prompt_id"
    assert "'missing'" in caught.value.message


async def test_a_failing_store_is_unavailable(subject: Subject) -> None:
    await get(subject, "greeting")
    subject.break_store()

    with pytest.raises(PromptStoreUnavailable) as caught:
        await get(subject, "greeting")

    assert caught.value.status_code == 502


async def test_aclose_can_be_called_twice(subject: Subject) -> None:
    await get(subject, "greeting")

    await subject.store.aclose()
    await subject.store.aclose()


# --- every HTTP store goes through stores/_http.py (the kind fixture runs each) ------------


async def test_default_is_one_retry(kind: HttpKind, fake: Any, client: httpx2.AsyncClient) -> None:
    fake.fail_with = 500
    store = kind.build(**{**kind.settings, "client": client})

    with pytest.raises(PromptStoreUnavailable, match=rf"{kind.host} failed with HTTP 500"):
        await store.get_prompt(PromptQuery("p"))

    assert fake.fetch_count == 2


async def test_forbidden_is_refused_credentials(kind: HttpKind, fake: Any, store: Any) -> None:
    fake.fail_with = 403

    with pytest.raises(PromptStoreUnavailable, match=rf"refused {kind.refused} \(HTTP 403\)"):
        await store.get_prompt(PromptQuery("p"))


async def test_a_404_that_is_not_the_services_is_not_a_missing_prompt(
    kind: HttpKind, mock: respx.MockRouter, mocked_store: Any
) -> None:
    mock.route(host=kind.host).respond(404, html="<html>Not Found</html>")

    with pytest.raises(PromptStoreUnavailable, match=kind.check_base_url):
        await mocked_store.get_prompt(PromptQuery("x"))


async def test_redirects_are_not_followed(
    kind: HttpKind, mock: respx.MockRouter, mocked_store: Any
) -> None:
    route = mock.route(host=kind.host).respond(302, headers={"location": "http://evil.test/x"})

    with pytest.raises(PromptStoreUnavailable, match=r"redirect \(HTTP 302\)"):
        await mocked_store.get_prompt(PromptQuery("x"))

    assert route.call_count == 1  # and assert_all_mocked: nothing went to evil.test


async def test_concurrent_fetches_share_nothing_but_the_pool(
    kind: HttpKind, fake: Any, store: Any
) -> None:
    query = kind.seed(fake, "p", "x")
    fake.hold()
    calls = [asyncio.create_task(store.get_prompt(query)) for _ in range(5)]

    await fake.wait_for_held(5)
    fake.release()
    prompts = await asyncio.gather(*calls)

    assert [text_of(p) for p in prompts] == ["x"] * 5
    assert fake.fetch_count == 5  # single flight is the cache's job, not the store's


async def test_empty_name_is_not_sent(mock: respx.MockRouter, mocked_store: Any) -> None:
    # No route is mocked: a request would fail the test (assert_all_mocked).
    with pytest.raises(PromptNotFound):
        await mocked_store.get_prompt(PromptQuery(""))


@pytest.mark.parametrize(
    "base_url", ["ftp://h.test", "h.test", "http://", "http://h/?a=b", "http://h/#f"]
)
def test_a_bad_base_url_is_named(kind: HttpKind, base_url: str) -> None:
    with pytest.raises(ConfigurationError, match=kind.base_url_named):
        kind.build(**{**kind.settings, kind.base_url_key: base_url})


def test_a_base_url_with_credentials_is_refused_without_echoing_them(kind: HttpKind) -> None:
    settings = {**kind.settings, kind.base_url_key: "https://user:hunter2@h.test/v5"}
    with pytest.raises(ConfigurationError) as caught:
        kind.build(**settings)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "options", [{"timeout": 0}, {"timeout": -1}, {"retries": -1}, {"retry_backoff": -0.1}]
)
def test_bad_limits(kind: HttpKind, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        kind.build(**{**kind.settings, **options})


def test_repr_shows_the_host_only(kind: HttpKind) -> None:
    # Created outside an event loop: the pool is made on first use, in the serving loop.
    store = kind.build(**kind.settings)
    assert repr(store) == f"{type(store).__name__}(host={kind.host!r})"


async def test_an_injected_client_is_not_closed(store: Any, client: httpx2.AsyncClient) -> None:
    await store.aclose()

    assert not client.is_closed
