"""A fake Humanloop, written from its documented v5 API (Humanloop's API reference
and the ``humanloop`` Python SDK: ``reference.md``, ``types/prompt_response.py``,
``files/raw_client.py``).

Two routes, both under ``/v5``:

* ``GET /v5/prompts/{id}`` with ``version_id`` or ``environment`` (query); neither gives the
  version deployed to the default environment.
* ``POST /v5/files/retrieve-by-path`` with ``{"path": ...}`` (body) and ``environment``
  (query); it answers any file, each with its ``type`` (``prompt``, ``tool``, ...).

Behaviour the documents leave open, as this fake does it (assumptions, not facts): a prompt
deployed to no environment answers its latest version when neither parameter is given;
``version_id`` wins over ``environment``; a missing ``X-API-KEY`` is FastAPI's 403 ``{"detail":
"Not authenticated"}``, a wrong one 401 ``{"detail": "Invalid API key"}``; a 404 is FastAPI's
``{"detail": "..."}``; a 422 is FastAPI's ``HTTPValidationError``
(``{"detail": [{"loc", "msg", "type"}]}``), the type the SDK decodes it as.

Answers are a ``PromptResponse`` field for field: unset parameters are ``null``, and a new
version gets Humanloop's defaults (``temperature`` 1, ``top_p`` 1, penalties 0,
``max_tokens`` -1, ``tools`` and ``linked_tools`` empty, ``other`` ``{}``).

Knobs for tests: :attr:`latency`, :attr:`fail_with`, :meth:`fail_next`, :attr:`broken_body`,
:meth:`hold` / :meth:`release` / :meth:`wait_for_held`; :attr:`fetch_count` and
:attr:`requests`.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.fakes._faults import FaultKnobs

__all__ = ["INVALID_JSON", "WRONG_SHAPE", "FakeHumanloop", "RecordedRequest"]

#: ``broken_body`` values: a 200 that is not JSON, and JSON of another shape (a list page).
INVALID_JSON: Final = b'{"path": "broken", "template": '
WRONG_SHAPE: Final = b'{"records": [], "page": 1, "size": 10, "total": 0}'

_DEFAULTS: Final[dict[str, Any]] = {
    "endpoint": "chat",
    "provider": "openai",
    "template_language": "default",
    "max_tokens": -1,
    "temperature": 1,
    "top_p": 1,
    "stop": None,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "other": {},
    "seed": None,
    "response_format": None,
    "reasoning_effort": None,
    "tools": [],
    "linked_tools": [],
}
_VARIABLE: Final = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    api_key: str | None


@dataclass
class _Version:
    version_id: str
    model: str
    template: str | list[dict[str, Any]]
    parameters: dict[str, Any]
    created_at: datetime


@dataclass
class _File:
    id: str
    path: str
    type: str
    versions: list[_Version] = field(default_factory=list)
    deployed: dict[str, str] = field(default_factory=dict)  # environment -> version_id

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class FakeHumanloop(FaultKnobs):
    """An in-memory Humanloop organisation; ``app`` is its ASGI app."""

    def __init__(
        self,
        *,
        api_key: str = "hl_sk_test",
        environments: Sequence[str] = ("production", "staging"),
        default_environment: str = "production",
    ) -> None:
        super().__init__()
        if default_environment not in environments:
            raise ValueError("the default environment must be one of the environments")
        self.api_key = api_key
        self.default_environment = default_environment
        self._environments = {
            name: (f"env_{index:021d}", datetime.now(UTC))
            for index, name in enumerate(environments)
        }
        #: Every request on either route, in order.
        self.requests: list[RecordedRequest] = []
        self._files: dict[str, _File] = {}
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/v5/prompts/{id}", self._get_prompt, methods=["GET"]),
                Route("/v5/files/retrieve-by-path", self._retrieve_by_path, methods=["POST"]),
            ]
        )

    # --- the organisation's content ----------------------------------------------------------

    def add_prompt(
        self,
        path: str,
        template: str | Sequence[dict[str, Any]],
        *,
        model: str = "gpt-4o",
        deploy_to: Iterable[str] = (),
        **parameters: Any,
    ) -> tuple[str, str]:
        """Commit a new version of the prompt at ``path`` (created if new): ``(id, version_id)``.

        ``parameters`` override Humanloop's defaults (``temperature=0.2``, ``tools=[...]``,
        ``template_language="jinja"``, ...); ``deploy_to`` names environments to deploy it to.
        """
        stored = self._file(path, "prompt")
        unknown = set(parameters) - set(_DEFAULTS)
        if unknown:
            raise ValueError(f"not PromptResponse parameters: {sorted(unknown)}")
        version = _Version(
            version_id=f"prv_{next(self._ids):021d}",
            model=model,
            template=template if isinstance(template, str) else copy.deepcopy(list(template)),
            parameters={**copy.deepcopy(_DEFAULTS), **copy.deepcopy(parameters)},
            created_at=datetime.now(UTC),
        )
        stored.versions.append(version)
        for environment in deploy_to:
            self.deploy(stored.id, version.version_id, environment)
        return stored.id, version.version_id

    def add_tool(self, path: str) -> str:
        """A Tool file at ``path`` (what retrieve-by-path may answer instead of a prompt)."""
        stored = self._file(path, "tool")
        stored.versions.append(
            _Version(f"tlv_{next(self._ids):021d}", "", "", {}, datetime.now(UTC))
        )
        return stored.id

    def deploy(self, prompt_id: str, version_id: str, environment: str) -> None:
        """Deploy a version to an environment (replacing what was deployed there)."""
        if environment not in self._environments:
            raise KeyError(f"no environment {environment!r}")
        stored = self._files[prompt_id]
        if not any(v.version_id == version_id for v in stored.versions):
            raise KeyError(f"{prompt_id} has no version {version_id}")
        stored.deployed[environment] = version_id

    def prompt_id(self, path: str) -> str:
        return next(f.id for f in self._files.values() if f.path == path)

    def _file(self, path: str, kind: str) -> _File:
        for stored in self._files.values():
            if stored.path == path:
                if stored.type != kind:
                    raise ValueError(f"{path!r} is a {stored.type}")
                return stored
        prefix = {"prompt": "pr", "tool": "tl"}[kind]
        stored = _File(id=f"{prefix}_{next(self._ids):021d}", path=path, type=kind)
        self._files[stored.id] = stored
        return stored

    # --- counters and knobs -------------------------------------------------------------------

    @property
    def fetch_count(self) -> int:
        """Every request on either route, whatever its answer."""
        return len(self.requests)

    # --- the routes ---------------------------------------------------------------------------

    async def _get_prompt(self, request: Request) -> Response:
        early = await self._before(request, body=None)
        if early is not None:
            return early
        stored = self._files.get(request.path_params["id"])
        if stored is None or stored.type != "prompt":
            return _detail(404, f"Prompt with id `{request.path_params['id']}` not found.")
        return self._answer(stored, request)

    async def _retrieve_by_path(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        early = await self._before(request, body=body)
        if early is not None:
            return early
        path = body.get("path") if isinstance(body, dict) else None
        if not isinstance(path, str):
            return JSONResponse(
                {
                    "detail": [
                        {
                            "type": "missing",
                            "loc": ["body", "path"],
                            "msg": "Field required",
                            "input": body,
                        }
                    ]
                },
                status_code=422,
            )
        stored = next((f for f in self._files.values() if f.path == path), None)
        if stored is None:
            return _detail(404, f"File with path `{path}` not found.")
        return self._answer(stored, request)

    async def _before(self, request: Request, *, body: Any) -> Response | None:
        """Record, wait, then the outage knobs and auth: a response, or None to go on."""
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                body=body,
                api_key=request.headers.get("x-api-key"),
            )
        )
        await self._wait()
        status = self._next_failure()
        if status is not None:
            return _failure(status)
        key = request.headers.get("x-api-key")
        if not key:
            return _detail(403, "Not authenticated")
        if key != self.api_key:
            return _detail(401, "Invalid API key")
        return None

    def _answer(self, stored: _File, request: Request) -> Response:
        version_id = request.query_params.get("version_id")
        environment = request.query_params.get("environment")
        if version_id:
            found = next((v for v in stored.versions if v.version_id == version_id), None)
            missing = f"Version `{version_id}` of `{stored.id}` not found."
        elif environment:
            if environment not in self._environments:
                return _detail(404, f"Environment `{environment}` not found.")
            deployed = stored.deployed.get(environment)
            found = next((v for v in stored.versions if v.version_id == deployed), None)
            missing = f"`{stored.id}` has no version deployed to `{environment}`."
        else:
            deployed = stored.deployed.get(self.default_environment)
            found = next(
                (v for v in stored.versions if v.version_id == deployed), stored.versions[-1]
            )
            missing = ""
        if found is None:
            return _detail(404, missing)
        if self.broken_body is not None:
            return Response(self.broken_body, media_type="application/json")
        if stored.type != "prompt":
            return JSONResponse(
                {
                    "path": stored.path,
                    "id": stored.id,
                    "name": stored.name,
                    "type": stored.type,
                    "version_id": found.version_id,
                }
            )
        return JSONResponse(self._serialise(stored, found))

    def _serialise(self, stored: _File, found: _Version) -> dict[str, Any]:
        created = found.created_at.isoformat()
        environments = [
            {
                "id": self._environments[name][0],
                "created_at": self._environments[name][1].isoformat(),
                "name": name,
                "tag": "default" if name == self.default_environment else "other",
            }
            for name, version_id in stored.deployed.items()
            if version_id == found.version_id
        ]
        texts = (
            [found.template]
            if isinstance(found.template, str)
            else [m["content"] for m in found.template if isinstance(m.get("content"), str)]
        )
        inputs = dict.fromkeys(name for text in texts for name in _VARIABLE.findall(text))
        return {
            "path": stored.path,
            "id": stored.id,
            "directory_id": "dir_000000000000000000001",
            "name": stored.name,
            "version_id": found.version_id,
            "type": "prompt",
            "environments": environments,
            "created_at": created,
            "updated_at": created,
            "created_by": None,
            "last_used_at": created,
            "model": found.model,
            "template": copy.deepcopy(found.template),
            **copy.deepcopy(found.parameters),
            "attributes": None,
            "version_name": None,
            "version_description": None,
            "description": None,
            "tags": None,
            "readme": None,
            "schema": None,
            "version_logs_count": 0,
            "total_logs_count": 0,
            "inputs": [{"name": name} for name in inputs],
            "evaluators": None,
            "evaluator_aggregates": None,
            "raw_file_content": None,
        }


def _detail(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _failure(status: int) -> Response:
    if status == 422:
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["query", "environment"],
                        "msg": "Input should be a valid string",
                        "type": "string_type",
                    }
                ]
            },
            status_code=422,
        )
    if status == 429:
        return _detail(429, "Rate limit exceeded")
    if status == 500:
        return _detail(500, "Internal Server Error")
    if status >= 500:
        # What a load balancer in front of the API sends when it is down.
        return HTMLResponse(f"<html><body><h1>{status}</h1></body></html>", status_code=status)
    return _detail(status, f"HTTP {status}")
