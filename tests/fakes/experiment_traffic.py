"""A known sequence of requests through a real sidecar that runs an experiment.

The experiment ``tone`` splits ``support/answer`` (``examples/experiments/prompts``) between
``production`` (the control), ``candidate`` and ``ghost`` — a label the prompt does not have,
so a request given it is served the control (a control fallback). Users are picked by the
experiment's own choice, so each request's variant is known in advance.

:func:`send_known_sequence` covers, for both variants, a JSON answer and a stream (with usage),
an upstream 5xx and 4xx, a control fallback, and two requests no experiment counts (a pinned
label, an unmanaged request). :func:`expected_series` is what ``/metrics`` must then show,
computed from the bodies the fake upstream received (its usage is a function of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import yaml
from prometheus_client.parser import text_string_to_metric_families

from prompt_middleware.experiments import Experiment
from prompt_middleware.experiments.choice import Split
from tests.fakes.upstream import CannedResponse, FakeUpstream

__all__ = [
    "EXPERIMENT",
    "PROMPTS",
    "Series",
    "example_request",
    "expected_series",
    "metric_samples",
    "send_known_sequence",
    "sidecar_env",
    "variant_samples",
]

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "examples" / "experiments" / "prompts"
URL = "/v1/chat/completions"
EXPERIMENT = "tone"
CONFIG = """\
experiments:
  - name: tone
    prompt_id: support/answer
    variants:
      - {label: production, weight: 40}
      - {label: candidate, weight: 40}
      - {label: ghost, weight: 20}
    sticky: user
"""

#: A metric sample: name and its labels as sorted pairs.
Series = tuple[str, tuple[tuple[str, str], ...]]


def sidecar_env(tmp: Path, upstream_url: str) -> dict[str, str]:
    """The sidecar's environment: the example's prompts, the experiment, the fake upstream."""
    config = tmp / "config.yaml"
    config.write_text(CONFIG)
    return {
        "PROMPT_MIDDLEWARE_PROMPTS_DIR": str(PROMPTS),
        "PROMPT_MIDDLEWARE_CONFIG": str(config),
        "PROMPT_MIDDLEWARE_UPSTREAM_BASE_URL": f"{upstream_url}/v1",
        "PROMPT_MIDDLEWARE_DEFAULT_STORE": "file",
    }


def _user_for(variant: str) -> str:
    """A ``user`` the experiment of :data:`CONFIG` gives ``variant``."""
    (entry,) = yaml.safe_load(CONFIG)["experiments"]
    split = Split(msgspec.convert(entry, Experiment))
    return next(f"user-{n}" for n in range(10_000) if split.choose(f"user-{n}").name == variant)


def example_request(user: str | None = None, **extra: Any) -> dict[str, Any]:
    """A request for ``support/answer`` of ``examples/experiments`` (``user``: its sticky key)."""
    request: dict[str, Any] = {
        "model": "file/gpt-4o-mini",
        "prompt_id": "support/answer",
        "prompt_variables": {"product": "Acme Cloud"},
        "messages": [{"role": "user", "content": "My invoice is wrong."}],
        **extra,
    }
    if user is not None:
        request["user"] = user
    return request


@dataclass(frozen=True)
class Sent:
    """A request of the sequence: the variant it must be counted under (None: not counted)
    and its status, and whether the upstream answered it with usage."""

    variant: str | None
    status: int
    stream: bool = False


async def send_known_sequence(client: httpx.AsyncClient, upstream: FakeUpstream) -> list[Sent]:
    """Send the sequence (one request at a time) and check each answer's variant and status."""
    production, candidate, ghost = (_user_for(v) for v in ("production", "candidate", "ghost"))
    stream = {"stream": True, "stream_options": {"include_usage": True}}
    failing = {500: b'{"error": {"message": "boom"}}', 429: b'{"error": {"message": "slow"}}'}
    plan: list[tuple[dict[str, Any], Sent, int | None]] = [
        (example_request(production), Sent("production", 200), None),
        (example_request(candidate), Sent("candidate", 200), None),
        (example_request(production, **stream), Sent("production", 200, stream=True), None),
        (example_request(candidate, **stream), Sent("candidate", 200, stream=True), None),
        (example_request(ghost), Sent("production", 200), None),  # the control, served instead
        (example_request(production), Sent("production", 500), 500),
        (example_request(candidate), Sent("candidate", 429), 429),
        (example_request(production, prompt_label="candidate"), Sent(None, 200), None),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            Sent(None, 200),
            None,
        ),
    ]
    sent = []
    for body, expected, failure in plan:
        upstream.response = None
        if failure is not None:
            headers = [(b"content-type", b"application/json")]
            upstream.response = CannedResponse(failure, failing[failure], headers)
        response = await client.post(URL, json=body)
        assert response.status_code == expected.status, response.text
        assert response.headers.get("x-prompt-variant") == expected.variant, body
        if expected.stream:
            assert response.text.rstrip().endswith("data: [DONE]")
        sent.append(expected)
    upstream.response = None
    return sent


def expected_series(sent: Iterable[Sent], upstream: FakeUpstream) -> dict[Series, float]:
    """The exact values of the counters, and the counts of the histograms, for ``sent``."""
    expected: dict[Series, float] = {}

    def add(name: str, value: float, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        expected[key] = expected.get(key, 0) + value

    for request, upstream_request in zip(sent, upstream.requests, strict=True):
        variant = request.variant
        if variant is None:
            continue
        labels = {"experiment": EXPERIMENT, "variant": variant}
        add(
            "prompt_middleware_variant_responses_total",
            1,
            status=f"{request.status // 100}xx",
            **labels,
        )
        add("prompt_middleware_variant_upstream_seconds_count", 1, **labels)
        add("prompt_middleware_variant_duration_seconds_count", 1, **labels)
        if request.stream:
            add("prompt_middleware_variant_first_token_seconds_count", 1, **labels)
        if request.status == 200:  # the fake's usage: a token per 4 bytes sent, one per word
            sent_body = upstream_request.body
            add(
                "prompt_middleware_variant_tokens_total",
                len(sent_body) // 4,
                kind="input",
                **labels,
            )
            output = len(sent_body.decode().split())
            add("prompt_middleware_variant_tokens_total", output, kind="output", **labels)
    return expected


def metric_samples(text: str) -> dict[Series, float]:
    """Every sample of a ``/metrics`` text, by name and labels."""
    samples: dict[Series, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def variant_samples(text: str) -> dict[Series, float]:
    """The samples of the per-variant series that :func:`expected_series` predicts."""
    kept = {
        "prompt_middleware_variant_responses_total",
        "prompt_middleware_variant_tokens_total",
        "prompt_middleware_variant_upstream_seconds_count",
        "prompt_middleware_variant_duration_seconds_count",
        "prompt_middleware_variant_first_token_seconds_count",
    }
    return {key: value for key, value in metric_samples(text).items() if key[0] in kept}
