"""A PromptTransport made as the README shows, and closed."""

from __future__ import annotations

import json

import openai
import pytest

from prompt_middleware import Settings
from prompt_middleware.transport import PromptTransport
from tests.doors.transport.helpers import CHAT_URL, RecordingTransport, completion, sdk_http_client
from tests.fakes.memory import MemoryStore
from tests.fakes.mock_http import mock_httpx2


async def test_aclose_closes_the_stores_and_the_wrapped_transport(store: MemoryStore) -> None:
    inner = RecordingTransport()
    async with PromptTransport(inner, Settings(default_store="mem"), stores={"mem": store}):
        pass
    assert inner.closed
    assert store.closed


@pytest.mark.usefixtures("environment")
async def test_readme_usage_reads_its_settings_from_the_environment() -> None:
    with mock_httpx2() as upstream:
        route = upstream.post(CHAT_URL).respond(json=completion("Yes.", model="gpt-4o"))
        client = openai.AsyncOpenAI(http_client=sdk_http_client(PromptTransport()), max_retries=0)
        async with client:
            result = await client.chat.completions.create(
                model="file/gpt-4o-mini",
                messages=[{"role": "user", "content": "Does it float?"}],
                extra_body={"prompt_id": "support/answer", "prompt_variables": {"product": "Ark"}},
            )
    assert result.choices[0].message.content == "Yes."
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer sk-env"
    assert json.loads(request.content) == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You answer questions about Ark."},
            {"role": "user", "content": "Does it float?"},
        ],
        "temperature": 0.1,
    }
