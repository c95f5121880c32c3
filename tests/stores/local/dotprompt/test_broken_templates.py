"""A template that does not compile, or that the sandbox stops, never runs: its prompt is
unavailable (a 502 naming the file and line), the others are served, and the last good copy is
served while the cache has one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from structlog.testing import capture_logs

from prompt_middleware import Settings
from prompt_middleware.cache import PromptCache
from prompt_middleware.engine import RewriteEngine
from prompt_middleware.stores.local import LocalPromptStore
from tests.conftest import RecordingApp
from tests.fakes.clock import FakeClock
from tests.stores.local.dotprompt.support import send


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("---\nmodel: gpt-4\n---\nHello\n{% if x %}\n", "line 5: Unexpected end of template"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "line 1: the sandbox forbids"),
        ("Hi\n\n{% include 'chat_prompt.prompt' %}", "line 3: {% include %} is not supported"),
        ("{% set x | replace('a', v) %}a{% endset %}{{ x }}", "Jinja cannot compile it"),
    ],
)
async def test_a_template_that_cannot_be_served_is_a_502_naming_file_and_line(
    client: httpx2.AsyncClient, app: RecordingApp, litellm_folder: Path, text: str, reason: str
) -> None:
    (litellm_folder / "broken.prompt").write_text(text)
    with capture_logs() as logs:
        response = await send(client, "broken")
        other = await send(client, "without_frontmatter", prompt_variables={"message": "ok"})
    assert response.status_code == 502
    assert f"broken.prompt: {reason}" in response.json()["error"]["message"]
    [invalid] = [log for log in logs if log["event"] == "prompt_file_invalid"]
    assert invalid["path"] == "broken.prompt"
    assert other.status_code == 200  # the other prompts are served
    assert len(app.requests) == 1


async def test_what_the_sandbox_stops_at_render_is_a_502(
    client: httpx2.AsyncClient, app: RecordingApp, litellm_folder: Path
) -> None:
    (litellm_folder / "probe.prompt").write_text("User:\n{{ text[field] }}")
    variables = {"text": "abc", "field": "__class__"}
    with capture_logs() as logs:
        response = await send(client, "probe", prompt_variables=variables)
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    # A line of the template: the file has no front matter, so it is the file's line too.
    assert message.startswith(
        "Prompt 'probe' cannot be rendered: line 2 of its template: the sandbox stopped it"
    )
    assert any(log["event"] == "prompt_template_unsafe" for log in logs)
    assert app.requests == []


async def test_the_last_good_copy_is_served_while_the_file_does_not_compile(
    litellm_folder: Path,
) -> None:
    clock = FakeClock()
    store = LocalPromptStore(litellm_folder, poll_interval=0)  # every fetch rescans the folder
    engine = RewriteEngine(
        Settings(prompts_dir=str(litellm_folder)),
        stores={"file": store},
        cache=PromptCache(clock=clock),
    )

    async def rewrite(message: str) -> Any:
        variables = {"user_message": message}
        body = {"model": "file/x", "prompt_id": "chat_prompt", "prompt_variables": variables}
        result = await engine.rewrite(json.dumps(body).encode())
        assert result is not None
        return json.loads(result.body)["messages"]

    try:
        assert await rewrite("a") == [{"role": "user", "content": "a"}]
        path = litellm_folder / "chat_prompt.prompt"
        path.write_text(path.read_text() + "{% endif %}\n")
        clock.now += 60  # the cached copy expired: the next request asks the store again
        with capture_logs() as logs:
            assert await rewrite("b") == [{"role": "user", "content": "b"}]
        [invalid] = [log for log in logs if log["event"] == "prompt_file_invalid"]
        assert invalid["path"] == "chat_prompt.prompt"
        assert invalid["reason"].startswith("line 14: Encountered unknown tag 'endif'")
        assert any(log["event"] == "prompt_served_stale" for log in logs)
    finally:
        await engine.aclose()
