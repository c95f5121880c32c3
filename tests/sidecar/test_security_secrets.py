"""Secrets are in no log line, error message, repr or ``/metrics``; the sidecar's keys are each
compared with ``hmac.compare_digest``, all of them on every request."""

from __future__ import annotations

import hmac
import json
import logging

import httpx2
import pytest
import structlog

from prompt_middleware import ConfigurationError, PromptMiddleware, Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.conftest import RecordingApp
from tests.engine.fake_servers import (
    ATTACKER_PUBLIC,
    ATTACKER_SECRET,
    HUMANLOOP_KEY,
    ON_THE_SERVERS_LOOP,
    PUBLIC,
    SECRET,
    URL,
    Stores,
    assert_no_secret,
    client_for,
)


@ON_THE_SERVERS_LOOP
async def test_no_secret_in_logs_errors_or_metrics(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream = RecordingApp()
    settings = Settings(
        langfuse_public_key=PUBLIC,
        langfuse_secret_key=Secret(SECRET),
        langfuse_base_url=stores.langfuse_url,
        humanloop_api_key=Secret(HUMANLOOP_KEY),
        humanloop_base_url=stores.humanloop_url,
        allow_request_credentials=True,
        api_keys=(Secret("sk-sidecar-key"),),
    )
    sidecar = Sidecar(settings, upstream=upstream)
    wrong = PromptMiddleware(
        RecordingApp(),
        Settings(
            langfuse_public_key=PUBLIC,
            langfuse_secret_key=Secret("sk-lf-wrong-configured"),
            langfuse_base_url=stores.langfuse_url,
        ),
    )
    auth = {"authorization": "Bearer sk-sidecar-key"}
    greeting = {"model": "langfuse/m", "prompt_id": "greeting", "prompt_variables": {"name": "A"}}
    responses: list[httpx2.Response] = []
    with structlog.testing.capture_logs() as logs:
        async with client_for(sidecar) as client:
            for body in (
                {**greeting, "langfuse_public_key": PUBLIC, "langfuse_secret_key": SECRET},
                {
                    **greeting,
                    "langfuse_public_key": ATTACKER_PUBLIC,
                    "langfuse_secret_key": ATTACKER_SECRET,
                },
                {**greeting, "langfuse_secret_key": ATTACKER_SECRET},  # half a key pair: 400
                {"model": "humanloop/m", "prompt_id": "missing"},
            ):
                responses.append(await client.post(URL, json=body, headers=auth))
            responses.append(await client.post(URL, json=greeting))  # no sidecar key: 401
            metrics = await client.get("/metrics")
        async with client_for(wrong) as client:
            responses.append(await client.post(URL, json=greeting))  # Langfuse answers 401
        with pytest.raises(ConfigurationError) as config_error:
            PromptMiddleware(
                RecordingApp(),
                Settings(
                    langfuse_public_key=PUBLIC,
                    langfuse_secret_key=Secret(SECRET),
                    langfuse_base_url=f"http://{PUBLIC}:{SECRET}@127.0.0.1:1",
                ),
            )
    await sidecar.middleware.engine.aclose()
    await wrong.engine.aclose()

    assert [r.status_code for r in responses] == [200, 502, 400, 404, 401, 502]
    assert "authorization" not in upstream.last.headers  # the sidecar key is not passed on
    assert_no_secret(
        *(r.text + repr(r.headers) for r in responses),
        metrics.text,
        json.dumps(logs, default=repr),
        caplog.text,
        str(config_error.value),
        repr(settings),
        str(settings),
        *(r.body.decode() for r in upstream.requests),
    )


async def test_sidecar_keys_are_all_compared_with_compare_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = ("sk-sidecar-one", "sk-sidecar-two", "sk-sidecar-three")
    compared: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def recording_compare(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr("prompt_middleware.sidecar.app.hmac.compare_digest", recording_compare)
    upstream = RecordingApp()
    sidecar = Sidecar(Settings(api_keys=tuple(Secret(k) for k in keys)), upstream=upstream)
    body = {"model": "gpt-4o", "messages": []}
    async with client_for(sidecar) as client:
        statuses = []
        for offered in ("sk-sidecar-one", "sk-sidecar-three", "sk-sidecar-thre", ""):
            compared.clear()
            response = await client.post(
                URL, json=body, headers={"authorization": f"Bearer {offered}"}
            )
            statuses.append(response.status_code)
            # Every key is compared, with hmac.compare_digest, however early one matches.
            assert sorted(b for _, b in compared) == sorted(k.encode() for k in keys)
    await sidecar.middleware.engine.aclose()
    assert statuses == [200, 200, 401, 401]
