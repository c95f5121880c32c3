"""Every door applies the experiment: the sidecar (headers, log line, /metrics), the ASGI
middleware with a header key, ``PromptTransport``, and ``render`` — on ``examples/experiments``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx2
import structlog

from prompt_middleware import PromptMiddleware, PromptTransport, Settings
from prompt_middleware.experiments import Experiment
from prompt_middleware.sidecar import Sidecar
from prompt_middleware.sidecar.cli import _render
from tests.conftest import RecordingApp
from tests.fakes.experiment_traffic import example_request as body

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "experiments"
URL = "/v1/chat/completions"


def example_settings(**overrides: Any) -> Settings:
    settings = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_PROMPTS_DIR": str(EXAMPLE / "prompts"),
            "PROMPT_MIDDLEWARE_CONFIG": str(EXAMPLE / "config.yaml"),
        }
    )
    return Settings(
        **{**{f: getattr(settings, f) for f in settings.__struct_fields__}, **overrides}
    )


def test_the_example_config_loads_its_experiment() -> None:
    (experiment,) = example_settings().experiments
    assert isinstance(experiment, Experiment)
    assert (experiment.title, experiment.prompt_id, experiment.sticky) == (
        "support-tone",
        "support/answer",
        "user",
    )


async def test_the_readmes_two_users_through_the_echo_sidecar() -> None:
    sidecar = Sidecar(example_settings(echo=True))
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=sidecar), base_url="http://sidecar"
    ) as client:
        with structlog.testing.capture_logs() as logs:
            alice = await client.post(URL, json=body("alice"))
            ada = await client.post(URL, json=body("ada"))
            pinned = await client.post(URL, json=body("ada", prompt_label="production"))
        metrics = (await client.get("/metrics")).text
    assert (alice.headers["x-prompt-variant"], alice.headers["x-prompt-version"]) == (
        "production",
        "1",
    )
    assert (ada.headers["x-prompt-variant"], ada.headers["x-prompt-version"]) == ("candidate", "2")
    assert "x-prompt-variant" not in pinned.headers
    sent = json.loads(ada.json()["choices"][0]["message"]["content"])
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0]["content"].startswith("You are the friendly support assistant")
    lines = [e for e in logs if e["event"] == "prompt_request"]
    assert [(e.get("experiment"), e.get("variant")) for e in lines] == [
        ("support-tone", "production"),
        ("support-tone", "candidate"),
        (None, None),
    ]
    assert (
        'prompt_middleware_experiment_requests_total{experiment="support-tone",'
        'variant="production"} 1.0' in metrics
    )
    assert (
        'prompt_middleware_experiment_requests_total{experiment="support-tone",'
        'variant="candidate"} 1.0' in metrics
    )
    await sidecar.middleware.engine.aclose()


async def test_a_missing_candidate_is_served_as_the_control_and_counted_in_metrics(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "experiments:\n"
        "  - name: support-tone\n"
        "    prompt_id: support/answer\n"
        "    variants:\n"
        "      - {label: production, weight: 90}\n"
        "      - {label: nowhere, weight: 10}\n",
        encoding="utf-8",
    )
    settings = Settings.from_env(
        {
            "PROMPT_MIDDLEWARE_PROMPTS_DIR": str(EXAMPLE / "prompts"),
            "PROMPT_MIDDLEWARE_CONFIG": str(config),
            "PROMPT_MIDDLEWARE_ECHO": "true",
        }
    )
    sidecar = Sidecar(settings)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=sidecar), base_url="http://sidecar"
    ) as client:
        ada = await client.post(URL, json=body("ada"))  # ada's variant is the missing one
        metrics = (await client.get("/metrics")).text
    assert ada.status_code == 200
    assert ada.headers["x-prompt-variant"] == "production"
    assert (
        'prompt_middleware_experiment_control_fallbacks_total{experiment="support-tone",'
        'variant="nowhere"} 1.0' in metrics
    )
    await sidecar.middleware.engine.aclose()


async def test_the_middleware_passes_the_sticky_header() -> None:
    app = RecordingApp()
    settings = example_settings(
        experiments=(
            Experiment(
                name="support-tone",
                prompt_id="support/answer",
                variants=example_settings().experiments[0].variants,
                sticky="header:x-user-id",
            ),
        )
    )
    middleware = PromptMiddleware(app, settings)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=middleware), base_url="http://app"
    ) as client:
        ada = await client.post(URL, json=body(), headers={"X-User-Id": "ada"})
        alice = await client.post(URL, json=body(), headers={"X-User-Id": "alice"})
    assert ada.headers["x-prompt-variant"] == "candidate"
    assert alice.headers["x-prompt-variant"] == "production"
    await middleware.engine.aclose()


async def test_prompt_transport_applies_the_experiment() -> None:
    sent: list[httpx2.Request] = []

    def upstream(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(200, json={"ok": True})

    transport = PromptTransport(httpx2.MockTransport(upstream), example_settings())
    async with httpx2.AsyncClient(transport=transport, base_url="http://llm") as client:
        ada = await client.post(URL, json=body("ada"))
    assert ada.headers["x-prompt-variant"] == "candidate"
    assert json.loads(sent[0].content)["model"] == "gpt-4o-mini"
    await transport.aclose()


async def test_render_applies_the_experiment_from_the_bodys_user() -> None:
    out = io.BytesIO()
    code = await _render(example_settings(), io.BytesIO(json.dumps(body("ada")).encode()), out)
    assert code == 0
    rendered = json.loads(out.getvalue())
    assert rendered["model"] == "gpt-4o-mini"
    assert rendered["temperature"] == 0.5
