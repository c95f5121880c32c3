"""A managed prompt on Anthropic's Messages API: the Anthropic SDK, ``base_url`` pointed at the
sidecar, the prompt named in ``extra_body`` (``examples/starlette_app/prompts/claude/triage.yaml``).

    ./scripts/run                                # the echo sidecar on 127.0.0.1:4000
    .venv/bin/python -m examples.anthropic.main  # in another terminal

The echo sidecar answers with the request the upstream would have got: the prompt's system
message as ``system``, its model, ``max_tokens`` and ``stop_sequences``, then the client's
``messages``.
"""

from __future__ import annotations

import os

from anthropic import Anthropic

BASE_URL = os.environ.get("SIDECAR_URL", "http://127.0.0.1:4000")


def main(base_url: str = BASE_URL) -> str:
    client = Anthropic(base_url=base_url, api_key=os.environ.get("ANTHROPIC_API_KEY", "unused"))
    message = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=1024,
        messages=[{"role": "user", "content": "I was charged twice this month."}],
        extra_body={"prompt_id": "claude/triage", "prompt_variables": {"product": "Acme Cloud"}},
    )
    client.close()
    text = message.content[0].text if message.content[0].type == "text" else ""
    print(text)
    return text


if __name__ == "__main__":
    main()
