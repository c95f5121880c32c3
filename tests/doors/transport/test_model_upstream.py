"""A model-list entry's api_base and key: where the transport sends its request."""

from __future__ import annotations

import json

import respx

from prompt_middleware import ModelEntry, Secret, Settings
from tests.doors.transport.helpers import MakeClient, completion


async def test_model_list_entry_sends_to_its_own_upstream_with_its_key(
    make_client: MakeClient, router: respx.Router
) -> None:
    entry = ModelEntry(
        model_name="support-bot",
        model="mem/openai/gpt-4o-mini",
        prompt_id="greeting",
        api_base="http://entry.test/api/v1/",
        api_key=Secret("sk-entry"),
        params={"seed": 7},
    )
    route = router.post(
        "http://entry.test/api/v1/chat/completions", params={"tenant": "t1"}
    ).respond(json=completion())
    client = make_client(Settings(default_store="mem", model_list=(entry,)))
    await client.chat.completions.create(
        model="support-bot",
        messages=[],
        extra_body={"prompt_variables": {"name": "Di"}},
        extra_query={"tenant": "t1"},
    )
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer sk-entry"
    assert request.headers["host"] == "entry.test"
    assert json.loads(request.content) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello Di."}],
        "seed": 7,
    }
