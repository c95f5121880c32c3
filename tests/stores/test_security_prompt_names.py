"""Prompt names cannot escape: the local folder refuses traversal, and Langfuse gets every name
percent-encoded as exactly one path segment (asserted on the raw path the fake received)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from prompt_middleware import PromptMiddleware, Secret, Settings
from tests.conftest import RecordingApp
from tests.engine.fake_servers import (
    ON_THE_SERVERS_LOOP,
    PUBLIC,
    SECRET,
    URL,
    Stores,
    client_for,
    error_of,
)

SECRET_FILE_TEXT: Final = "TOP-SECRET-FILE-CONTENT"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A prompt folder with a secret prompt file and a secret text file just outside it."""
    prompts = tmp_path / "prompts"
    (prompts / "sub").mkdir(parents=True)
    (prompts / "greeting.yaml").write_text("prompt: 'Hello {{name}}'\n")
    (prompts / "sub" / "inner.yaml").write_text("prompt: 'Inner'\n")
    for name in ("secret.yaml", "secret.prompt"):
        (tmp_path / name).write_text(f"prompt: '{SECRET_FILE_TEXT}'\n")
    (tmp_path / "secret").write_text(SECRET_FILE_TEXT)
    (prompts / "link.yaml").symlink_to(tmp_path / "secret.yaml")
    (prompts / "out").symlink_to(tmp_path, target_is_directory=True)
    return prompts


def traversal_names(folder: Path) -> list[str]:
    outside = folder.parent / "secret"
    return [
        "../secret",
        "../../secret",
        "sub/../../secret",
        "sub/./../../secret",
        "./../secret",
        str(outside),
        str(outside) + ".yaml",
        "/etc/passwd",
        "..\\secret",
        "sub\\..\\..\\secret",
        "secret\x00",
        "greeting\x00/../../secret",
        "%2e%2e%2fsecret",
        "..%2fsecret",
        "%2e%2e/secret",
        "..%5csecret",
        "%252e%252e%252fsecret",
        "....//secret",
        ".../secret",
        "~/secret",
        "file://" + str(outside),
        "\uff0e\uff0e/secret",  # fullwidth dots
        "link",
        "out/secret",
        "out/prompts/greeting",
        "..",
        ".",
        "",
    ]


@pytest.mark.parametrize("model", ["file/gpt-4o", "dotprompt/gpt-4o"])
async def test_prompt_names_cannot_leave_the_prompt_folder(folder: Path, model: str) -> None:
    app = RecordingApp()
    middleware = PromptMiddleware(app, Settings(prompts_dir=str(folder)))
    outcomes: dict[str, tuple[int, str]] = {}
    async with client_for(middleware) as client:
        for name in traversal_names(folder):
            for extra in ({}, {"prompt_version": 1}, {"prompt_label": "latest"}):
                body = {"model": model, "prompt_id": name, **extra}
                response = await client.post(URL, json=body)
                assert SECRET_FILE_TEXT not in response.text
                outcomes[f"{name!r} {extra}"] = (response.status_code, error_of(response)["code"])
        served = await client.post(URL, json={"model": model, "prompt_id": "sub/inner"})
    await middleware.engine.aclose()

    assert served.status_code == 200  # the folder itself is served
    allowed = {(400, "invalid_prompt_request"), (404, "prompt_not_found")}
    assert {name: o for name, o in outcomes.items() if o not in allowed} == {}
    assert [r for r in app.requests if SECRET_FILE_TEXT.encode() in r.body] == []
    # The obvious traversals are refused outright, not merely not found.
    for name in ("../secret", str(folder.parent / "secret"), "..\\secret", "secret\x00"):
        assert outcomes[f"{name!r} {{}}"][0] == 400


@ON_THE_SERVERS_LOOP
@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("a/b", b"a%2Fb"),
        ("../x", b"..%2Fx"),
        ("x?y=1", b"x%3Fy%3D1"),
        ("#frag", b"%23frag"),
        ("%2F", b"%252F"),
        ("..", b"%2E%2E"),
        (".", b"%2E"),
        ("a b+c", b"a%20b%2Bc"),
        ("caf\u00e9", b"caf%C3%A9"),
        ("a\\b", b"a%5Cb"),
        ("a;b=c&d", b"a%3Bb%3Dc%26d"),
        ("@evil.example:80", b"%40evil.example%3A80"),
    ],
)
async def test_langfuse_gets_the_name_as_one_encoded_segment(
    stores: Stores, name: str, segment: bytes
) -> None:
    stores.langfuse.add_prompt(name, f"The prompt named {name}", labels=["production"])
    app = RecordingApp()
    settings = Settings(
        langfuse_public_key=PUBLIC,
        langfuse_secret_key=Secret(SECRET),
        langfuse_base_url=stores.langfuse_url,
    )
    middleware = PromptMiddleware(app, settings)
    async with client_for(middleware) as client:
        response = await client.post(URL, json={"model": "langfuse/m", "prompt_id": name})
    await middleware.engine.aclose()

    (request,) = stores.langfuse.requests
    assert request.raw_path == b"/api/public/v2/prompts/" + segment
    assert request.query_string == b"label=production"
    assert response.status_code == 200
    assert app.last.json()["messages"] == [{"role": "user", "content": f"The prompt named {name}"}]
