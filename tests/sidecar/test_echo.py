"""The echo upstream (--echo) under the real openai SDK: the request the upstream would get."""

from __future__ import annotations

import openai
import pytest

from tests.sidecar.helpers import echoed, sdk


async def test_openai_sdk_managed_request_through_the_echo_sidecar(echo_url: str) -> None:
    client = sdk(echo_url)
    raw = await client.chat.completions.with_raw_response.create(
        model="file/gpt-4o-mini",
        messages=[{"role": "user", "content": "My invoice is wrong."}],
        extra_body={
            "prompt_id": "support/answer",
            "prompt_variables": {"product": "Acme", "language": "Dutch"},
        },
    )
    completion = raw.parse()
    sent = echoed(completion.choices[0].message.content)
    assert sent["model"] == "gpt-4o"
    assert sent["messages"][1] == {"role": "user", "content": "My invoice is wrong."}
    assert "prompt_id" not in sent
    assert raw.headers["x-prompt-name"] == "support/answer"
    assert raw.headers["x-prompt-version"] == "2"
    await client.close()


async def test_openai_sdk_plain_request_passes_unchanged(echo_url: str) -> None:
    client = sdk(echo_url)
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], temperature=0.5
    )
    assert echoed(completion.choices[0].message.content) == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "gpt-4o",
        "temperature": 0.5,
    }
    await client.close()


async def test_openai_sdk_streamed_managed_request(echo_url: str) -> None:
    client = sdk(echo_url)
    stream = await client.chat.completions.create(
        model="dotprompt/gpt-4",
        messages=[],
        stream=True,
        extra_body={"prompt_id": "summarize", "prompt_variables": {"text": "Short."}},
    )
    pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert len(pieces) > 2  # it came in pieces
    sent = echoed("".join(pieces))
    assert sent["model"] == "gpt-4o-mini"
    assert sent["stream"] is True
    assert sent["messages"][-1]["content"] == "Summarise in two sentences: Short."
    await client.close()


async def test_openai_sdk_sees_our_errors(echo_url: str) -> None:
    client = sdk(echo_url)
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(
            model="file/x", messages=[], extra_body={"prompt_id": "no/such/prompt"}
        )
    assert missing.value.body is not None
    assert missing.value.code == "prompt_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(
            model="file/x",
            messages=[],
            extra_body={"prompt_id": "greeting", "prompt_label": "a", "prompt_version": 1},
        )
    assert bad.value.code == "invalid_prompt_request"
    await client.close()
