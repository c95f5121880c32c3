"""Off OpenAI's saved prompts, without changing the code: only ``base_url`` points at the
sidecar, and the ``pmpt_…`` prompt is a file in the prompt folder
(``examples/starlette_app/prompts/pmpt_68b0c1d2e3f4a5b6.yaml``).

    ./scripts/run                                # the echo sidecar on 127.0.0.1:4000
    .venv/bin/python -m examples.responses.main  # in another terminal

The echo sidecar answers with the request the upstream would have got: the prompt's developer
message as ``instructions``, its model and parameters, the client's ``input`` as sent.
"""

from __future__ import annotations

import os

from openai import OpenAI

BASE_URL = os.environ.get("SIDECAR_URL", "http://127.0.0.1:4000") + "/v1"


def main(base_url: str = BASE_URL) -> str:
    client = OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "sk-unused"))
    # The call as it was written against OpenAI's saved prompts, unchanged.
    response = client.responses.create(
        model="gpt-4o",
        prompt={
            "id": "pmpt_68b0c1d2e3f4a5b6",
            "version": "2",
            "variables": {
                "customer": "Ada",
                "product": {"type": "input_text", "text": "Acme Cloud"},
            },
        },
        input="My invoice is wrong.",
    )
    client.close()
    print(response.output_text)
    return response.output_text


if __name__ == "__main__":
    main()
