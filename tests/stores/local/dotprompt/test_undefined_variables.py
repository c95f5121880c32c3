"""An undefined variable is written as nothing and logged, as Jinja writes it; in strict mode
it is a 400 naming it. The same for a plain body filled by the ``{{variable}}`` substitution."""

from __future__ import annotations

from pathlib import Path

import httpx2
from structlog.testing import capture_logs

from prompt_middleware import Settings
from tests.conftest import ClientFactory, RecordingApp
from tests.stores.local.dotprompt.support import send


async def test_undefined_variables_are_empty_and_logged(
    client: httpx2.AsyncClient, app: RecordingApp, litellm_folder: Path
) -> None:
    (litellm_folder / "greet.prompt").write_text("Hello {{ name | title }}{% if x %}!{% endif %}")
    with capture_logs() as logs:
        assert (await send(client, "greet")).status_code == 200
    assert app.last.json()["messages"] == [{"role": "user", "content": "Hello"}]
    [warning] = [log for log in logs if log["event"] == "prompt_variables_missing"]
    assert warning["variables"] == ["name"]


async def test_undefined_variables_are_a_400_in_strict_mode(
    make_client: ClientFactory, app: RecordingApp, litellm_folder: Path
) -> None:
    (litellm_folder / "greet.prompt").write_text("Hello {{ name | title }}{{ plain }}")
    client = make_client(Settings(prompts_dir=str(litellm_folder), strict_variables=True))
    response = await send(client, "greet")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_prompt_request"
    assert error["message"] == (
        "Prompt 'greet' needs variables that prompt_variables does not give: ['name', 'plain']."
    )
    assert app.requests == []


async def test_a_plain_file_renders_a_missing_variable_empty_as_jinja_does(
    client: httpx2.AsyncClient, app: RecordingApp, litellm_folder: Path
) -> None:
    (litellm_folder / "plain.prompt").write_text("System: Be {{ tone }}.\nUser: {{ question }}")
    with capture_logs() as logs:
        await send(client, "plain", prompt_variables={"question": "Why?"})
    assert app.last.json()["messages"] == [
        {"role": "system", "content": "Be ."},
        {"role": "user", "content": "Why?"},
    ]
    assert [log["variables"] for log in logs if log["event"] == "prompt_variables_missing"] == [
        ["tone"]
    ]
