"""--detailed-debug logs each upstream request as a curl command, secrets masked."""

from __future__ import annotations

import structlog

from prompt_middleware.settings import Secret
from tests.fakes.upstream import FakeUpstream
from tests.sidecar.forwarder.helpers import CHAT, SETTINGS_KEY, forwarding, settings_for


async def test_detailed_debug_logs_curl_without_secrets(fake: FakeUpstream, upstream: str) -> None:
    settings = settings_for(upstream, upstream_api_key=Secret(SETTINGS_KEY))
    with structlog.testing.capture_logs() as logs:
        async with forwarding(settings, detailed_debug=True) as (client, _):
            await client.post("/v1/chat/completions?api-version=1&key=sk-query", json=CHAT)
    (log,) = [log for log in logs if log["event"] == "upstream_request"]
    curl = log["curl"]
    url = f"{upstream}/chat/completions?api-version=1&key=**********"
    assert curl.startswith(f"curl -sS -X POST '{url}'")
    assert "'authorization: Bearer **********'" in curl
    assert '"model":"gpt-4o"' in curl
    assert SETTINGS_KEY not in repr(logs)
    assert "sk-query" not in repr(logs)
    assert fake.last.query == "api-version=1&key=sk-query"  # masked in the log only
