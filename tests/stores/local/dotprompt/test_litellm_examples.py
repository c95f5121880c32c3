"""LiteLLM's dotprompt test folder and README examples, sent as our requests.

``prompts/`` restates the prompts of LiteLLM's ``tests/test_litellm/integrations/dotprompt/``
and of its dotprompt README: conditionals, loops over lists, filters, comments, front matter
with and without a body. Each test sends the request a LiteLLM user would send and checks what
reaches the upstream; where we differ from LiteLLM on purpose, the test says so.
"""

from __future__ import annotations

from pathlib import Path

import httpx2

from tests.conftest import RecordingApp
from tests.stores.local.dotprompt.support import send


async def test_a_conditional_system_message(client: httpx2.AsyncClient, app: RecordingApp) -> None:
    variables = {"user_message": "Hello there!", "system_context": "You are a helpful assistant."}
    response = await send(client, "chat_prompt", prompt_variables=variables)
    assert response.status_code == 200
    assert app.last.json() == {
        "model": "gpt-4",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello there!"},
        ],
        "temperature": 0.7,
        "max_tokens": 150,
    }
    await send(client, "chat_prompt", prompt_variables={"user_message": "Hello there!"})
    assert app.last.json()["messages"] == [{"role": "user", "content": "Hello there!"}]


async def test_a_loop_over_a_list_and_a_code_block(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    variables = {
        "language": "Python",
        "task": "Create a function to calculate fibonacci numbers",
        "code": "def fib(n):\n    pass",
        "requirements": ["Use recursion", "Handle edge cases", "Add documentation"],
    }
    assert (await send(client, "coding_assistant", prompt_variables=variables)).status_code == 200
    sent = app.last.json()
    assert sent["model"] == "claude-3-5-sonnet-20241022"
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 2000)
    [message] = sent["messages"]
    assert message["role"] == "user"  # LiteLLM's dotprompt sends a text prompt as user too
    content = message["content"]
    assert content.startswith("You are a helpful coding assistant. Focus on Python programming.")
    assert "```Python\ndef fib(n):\n    pass\n```" in content  # indentation kept (LiteLLM strips)
    for requirement in variables["requirements"]:
        assert f"- {requirement}\n" in content


async def test_an_if_else_on_a_number_and_an_optional_loop(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    await send(client, "recommendations", prompt_variables={"name": "Ada", "age": 36})
    content = app.last.json()["messages"][0]["content"]
    assert content.startswith("Hello Ada!")
    assert "mature recommendations" in content
    assert "Based on" not in content
    variables = {"name": "Tim", "age": 12, "preferences": ["chess"]}
    await send(client, "recommendations", prompt_variables=variables)
    content = app.last.json()["messages"][0]["content"]
    assert "age-appropriate" in content
    assert "- Based on your interest in chess, I recommend..." in content


async def test_filters_and_comments(
    client: httpx2.AsyncClient, app: RecordingApp, litellm_folder: Path
) -> None:
    (litellm_folder / "greet.prompt").write_text(
        "---\nmodel: gpt-4o\n---\n{# for the support team #}\n"
        "System: Greet {{ name | title }} in {{ languages | join(', ') | upper }}.\n"
        "User: {{ question | trim }}\n"
    )
    variables = {"name": "ada lovelace", "languages": ["en", "fr"], "question": "  Hi!  "}
    assert (await send(client, "greet", prompt_variables=variables)).status_code == 200
    assert app.last.json()["messages"] == [
        {"role": "system", "content": "Greet Ada Lovelace in EN, FR."},
        {"role": "user", "content": "Hi!"},
    ]


async def test_a_plain_prompt_with_an_output_schema(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    await send(client, "sample_prompt", prompt_variables={"text": "This is a test article."})
    sent = app.last.json()
    assert sent["model"] == "gemini/gemini-1.5-pro"
    assert sent["messages"] == [
        {
            "role": "user",
            "content": "Extract the requested information from the given text. If a piece of "
            "information is not present, omit that field from the output.\n\n"
            "Text: This is a test article.",
        }
    ]
    assert set(sent) == {"model", "messages"}  # input and output schemas are not sent


async def test_role_markers_make_messages(client: httpx2.AsyncClient, app: RecordingApp) -> None:
    variables = {"personality": "pirate", "context": "Speak like one."}
    await send(client, "conversation", prompt_variables=variables)
    assert app.last.json()["messages"] == [
        {"role": "system", "content": "You are a pirate. Speak like one."},
        {"role": "user", "content": "Let's start our conversation."},
    ]


async def test_a_file_without_front_matter(client: httpx2.AsyncClient, app: RecordingApp) -> None:
    await send(client, "without_frontmatter", prompt_variables={"message": "Hello!"})
    assert app.last.json() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Simple template: Hello!"}],
    }


async def test_front_matter_without_a_body_sends_the_clients_messages(
    client: httpx2.AsyncClient, app: RecordingApp
) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    await send(client, "front_matter_only", messages=messages)
    # guardrails is LiteLLM's, not a request parameter: not sent (LiteLLM sends it)
    assert app.last.json() == {"model": "gpt-4o-mini", "messages": messages, "temperature": 0.3}


async def test_no_html_escaping(client: httpx2.AsyncClient, app: RecordingApp) -> None:
    # LiteLLM's environment autoescapes: its model reads "Tom &amp; Jerry &lt;3".
    await send(client, "chat_prompt", prompt_variables={"user_message": "Tom & Jerry <3"})
    assert app.last.json()["messages"] == [{"role": "user", "content": "Tom & Jerry <3"}]
