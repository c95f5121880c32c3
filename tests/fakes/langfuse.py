"""A fake Langfuse server, written from Langfuse's public API reference.

It implements ``GET /api/public/v2/prompts/{promptName}`` as Langfuse's own server does:

* Basic auth with the project's public and secret key; a Bearer key is refused with 403 (the
  prompts API needs the secret key).
* ``label`` or ``version``; neither means ``production``; both is a 400.
* Labels are unique per prompt: giving a version a label takes it from every other version.
  ``latest`` is Langfuse's: always on the highest version, never set by hand.
* A prompt may embed text prompts: ``@@@langfusePrompt:name=X|label=Y@@@`` (or
  ``|version=N``) in its text or a message's content is replaced by that prompt's text when the
  prompt is served (recursively; ``resolve=false`` serves the text as stored), and
  ``resolutionGraph`` names what was embedded, as Langfuse's server does (``web/src/features/
  prompts/server/utils/promptDependencies``, regex ``@@@langfusePrompt:(.*?)@@@``).
* The prompt name may arrive with its ``/`` encoded (``support%2Fanswer``) or raw, as the
  current server's catch-all route accepts both; ``legacy_routing=True`` makes a raw ``/``
  miss the route with an HTML 404, as older servers (and a wrong base URL) do.

Error bodies mirror the server's (langfuse/langfuse, ``web/src/features/public-api/server/
withMiddlewares.ts`` answers ``{"message": error.message, "error": error.name}``):

* 401 ``{"message": "Invalid credentials. Confirm that you've configured the correct host.",
  "error": "UnauthorizedError"}`` (``apiAuth.ts``; "Invalid public key. ..." for an unknown
  public key, "No authorization header" without one),
* 403 ``{"message": "Access denied - need to use basic auth with secret key to GET prompts",
  "error": "ForbiddenError"}`` (``authorizePromptRequest.ts``),
* 404 ``{"message": "Prompt not found: 'x' with label 'production'", "error":
  "LangfuseNotFoundError"}`` (``promptNameHandler.ts``),
* 400 ``{"message": "Cannot specify both version and label", "error": "InvalidRequestError"}``
  (``getPromptByName.ts``).

``POST /api/public/otel/v1/traces`` is Langfuse's OpenTelemetry endpoint (OTLP/HTTP,
protobuf, gzip allowed), behind the same Basic auth; what it receives is kept in
:attr:`trace_exports` (decoded by ``tests.fakes.otlp``), its spans in :attr:`trace_spans`,
and it answers ``{}`` as the server does. The prompt knobs below do not apply to it.

Knobs for tests: :attr:`latency`, :attr:`fail_with`, :meth:`fail_next`, :attr:`broken_body`,
:meth:`hold` / :meth:`release` / :meth:`wait_for_held`; counters :attr:`fetch_count` and
:meth:`fetches`; every request is kept in :attr:`requests`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.fakes._faults import FaultKnobs
from tests.fakes.otlp import ReceivedExport, ReceivedSpan, parse_export, spans_of
from tests.fakes.server import serve_in_background

__all__ = [
    "INVALID_JSON",
    "WRONG_SHAPE",
    "FakeLangfuse",
    "FetchKey",
    "RecordedRequest",
    "serving_langfuse",
]

PROMPTS_PATH: Final = "/api/public/v2/prompts/"
OTEL_TRACES_PATH: Final = "/api/public/otel/v1/traces"
LATEST: Final = "latest"
PRODUCTION: Final = "production"

#: ``broken_body`` values: a 200 whose body is not JSON, and one that is JSON of another shape
#: (the prompt list's, as a base URL pointing at the wrong route would give).
INVALID_JSON: Final = b'{"name": "broken", "prompt": '
WRONG_SHAPE: Final = b'{"data": [], "meta": {"page": 1, "limit": 10, "totalItems": 0}}'

#: (name, label, version) of one GET, with the label resolved: ``production`` when neither
#: label nor version was sent, ``None`` when a version was.
FetchKey = tuple[str, str | None, int | None]

#: The chat prompt most end-to-end tests ask for: a system message, then the client's messages.
SUPPORT_ANSWER: Final = (
    {"role": "system", "content": "You support {{product}}."},
    {"type": "placeholder", "name": "messages"},
)

_UNAUTHORIZED_SUFFIX: Final = ". Confirm that you've configured the correct host."
_DEPENDENCY: Final = re.compile(r"@@@langfusePrompt:(.*?)@@@")
# Langfuse refuses deeper nesting when a prompt is saved; the fake stops a cycle with it.
_MAX_DEPENDENCY_DEPTH: Final = 5


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it: the raw (still encoded) path and query."""

    method: str
    raw_path: bytes
    query_string: bytes
    authorization: str | None


@dataclass
class _Version:
    version: int
    type: Literal["text", "chat"]
    prompt: str | list[dict[str, Any]]
    config: Any
    labels: list[str]
    commit_message: str | None
    created_at: datetime


@dataclass
class _StoredPrompt:
    name: str
    tags: list[str] = field(default_factory=list)
    versions: dict[int, _Version] = field(default_factory=dict)

    @property
    def latest(self) -> int:
        return max(self.versions)

    def labels_of(self, version: int) -> list[str]:
        labels = list(self.versions[version].labels)
        if version == self.latest:
            labels.append(LATEST)
        return labels

    def find(self, *, label: str | None, version: int | None) -> _Version | None:
        if version is not None:
            return self.versions.get(version)
        if label == LATEST:
            return self.versions[self.latest]
        return next((v for v in self.versions.values() if label in v.labels), None)

    def take_labels(self, labels: Iterable[str]) -> None:
        """Remove ``labels`` from every version: a label points at one version only."""
        taken = set(labels)
        for stored in self.versions.values():
            stored.labels = [label for label in stored.labels if label not in taken]


class FakeLangfuse(FaultKnobs):
    """An in-memory Langfuse project serving the prompts API; ``app`` is its ASGI app."""

    def __init__(
        self,
        *,
        public_key: str = "pk-lf-test",
        secret_key: str = "sk-lf-test",
        legacy_routing: bool = False,
    ) -> None:
        super().__init__()
        self.public_key = public_key
        self.secret_key = secret_key
        self.legacy_routing = legacy_routing
        #: Every GET on the prompts route, in order.
        self.requests: list[RecordedRequest] = []
        self._prompts: dict[str, _StoredPrompt] = {}
        self._fetches: Counter[FetchKey] = Counter()
        #: Every export the OpenTelemetry endpoint accepted, in order.
        self.trace_exports: list[ReceivedExport] = []
        self.app = Starlette(
            routes=[
                Route(PROMPTS_PATH + "{promptName:path}", self._get_prompt, methods=["GET"]),
                Route(OTEL_TRACES_PATH, self._export_traces, methods=["POST"]),
            ]
        )

    # --- the project's content --------------------------------------------------------------

    def add_prompt(
        self,
        name: str,
        prompt: str | Sequence[dict[str, Any]],
        *,
        type: Literal["text", "chat"] | None = None,
        config: Any = None,
        labels: Iterable[str] = (),
        version: int | None = None,
        tags: Iterable[str] | None = None,
        commit_message: str | None = None,
    ) -> int:
        """Create a version of ``name`` (as ``POST /api/public/v2/prompts`` does); its number.

        ``type`` defaults to ``text`` for a string and ``chat`` for a list of messages
        (``{"role", "content"}``, optionally ``"type": "chatmessage"``, or ``{"type":
        "placeholder", "name"}``). ``config`` defaults to ``{}``; any JSON value is kept as is.
        """
        if not name:
            raise ValueError("a prompt needs a name")
        kind = type or ("text" if isinstance(prompt, str) else "chat")
        if (kind == "text") != isinstance(prompt, str):
            raise ValueError(f"a {kind} prompt needs {'a string' if kind == 'text' else 'a list'}")
        labels = list(dict.fromkeys(labels))
        if LATEST in labels:
            raise ValueError("'latest' is managed by Langfuse and cannot be set")
        stored = self._prompts.setdefault(name, _StoredPrompt(name=name))
        number = version if version is not None else max(stored.versions, default=0) + 1
        if number < 1 or number in stored.versions:
            raise ValueError(f"version {number} of {name!r} is taken or invalid")
        stored.take_labels(labels)
        stored.versions[number] = _Version(
            version=number,
            type=kind,
            prompt=prompt if isinstance(prompt, str) else [dict(m) for m in prompt],
            config={} if config is None else config,
            labels=labels,
            commit_message=commit_message,
            created_at=datetime.now(UTC),
        )
        if tags is not None:
            stored.tags = list(dict.fromkeys(tags))
        return number

    def set_labels(self, name: str, version: int, labels: Iterable[str]) -> None:
        """Give ``version`` exactly ``labels``, taking them from the prompt's other versions."""
        stored = self._prompts[name]
        if version not in stored.versions:
            raise KeyError(f"{name!r} has no version {version}")
        labels = list(dict.fromkeys(labels))
        if LATEST in labels:
            raise ValueError("'latest' is managed by Langfuse and cannot be set")
        stored.take_labels(labels)
        stored.versions[version].labels = labels

    def delete_prompt(self, name: str) -> None:
        """Delete every version of ``name``."""
        del self._prompts[name]

    # --- counters and knobs -------------------------------------------------------------------

    @property
    def fetch_count(self) -> int:
        """Every GET on the prompts route, whatever its answer."""
        return len(self.requests)

    def fetches(self, name: str, *, label: str | None = None, version: int | None = None) -> int:
        """GETs for ``name`` by that label or version (no label and no version: production)."""
        if version is None and label is None:
            label = PRODUCTION
        return self._fetches[(name, label, version)]

    @property
    def fetch_counts(self) -> Counter[FetchKey]:
        return Counter(self._fetches)

    @property
    def trace_spans(self) -> list[ReceivedSpan]:
        """The spans of every accepted export, in order."""
        return [span for export in self.trace_exports for span in export.spans]

    # --- the OpenTelemetry endpoint -----------------------------------------------------------

    async def _export_traces(self, request: Request) -> Response:
        denied = self._check_auth(request.headers.get("authorization"))
        if denied is not None:
            return denied
        content_type = request.headers.get("content-type", "")
        if content_type not in ("application/x-protobuf", "application/json"):
            return _error(400, "InvalidRequestError", "Unsupported content type")
        body = await request.body()
        export = parse_export(body, content_type, request.headers.get("content-encoding"))
        self.trace_exports.append(
            ReceivedExport(dict(request.headers), spans_of(export), export, body)
        )
        return JSONResponse({})

    # --- the route ----------------------------------------------------------------------------

    async def _get_prompt(self, request: Request) -> Response:
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                raw_path=raw_path,
                query_string=request.scope.get("query_string", b""),
                authorization=request.headers.get("authorization"),
            )
        )
        name: str = request.path_params["promptName"]
        label = request.query_params.get("label")
        version_text = request.query_params.get("version")
        try:
            version = int(version_text) if version_text not in (None, "") else None
        except ValueError:
            version = None
            bad_version = True
        else:
            bad_version = False
        self._fetches[(name, label if label or version else PRODUCTION, version)] += 1

        await self._wait()

        status = self._next_failure()
        if status is not None:
            return _failure(status)
        if self.legacy_routing and b"/" in raw_path[len(PROMPTS_PATH) :]:
            return HTMLResponse(
                "<!DOCTYPE html><html><body>404: This page could not be found.</body></html>",
                status_code=404,
            )
        denied = self._check_auth(request.headers.get("authorization"))
        if denied is not None:
            return denied
        if bad_version:
            return JSONResponse(
                {
                    "message": "Invalid request data",
                    "error": [
                        {
                            "code": "invalid_type",
                            "expected": "number",
                            "received": "nan",
                            "path": ["version"],
                            "message": "Expected number, received nan",
                        }
                    ],
                },
                status_code=400,
            )
        if version is not None and label is not None:
            return _error(400, "InvalidRequestError", "Cannot specify both version and label")
        stored = self._prompts.get(name)
        found = (
            None
            if stored is None
            else stored.find(label=label if label or version else PRODUCTION, version=version)
        )
        if stored is None or found is None:
            where = f"with version {version}" if version else f"with label '{label or PRODUCTION}'"
            return _error(404, "LangfuseNotFoundError", f"Prompt not found: '{name}' {where}")
        if self.broken_body is not None:
            return Response(self.broken_body, media_type="application/json")
        row = self._serialise(stored, found)
        if request.query_params.get("resolve") != "false":
            embedded: list[dict[str, Any]] = []
            row["prompt"] = self._resolved(found.prompt, embedded, depth=0)
            if embedded:
                row["resolutionGraph"] = {
                    "root": {"name": stored.name, "version": found.version, "id": row["id"]},
                    "dependencies": {row["id"]: embedded},
                }
        return JSONResponse(row)

    def _resolved(
        self, prompt: str | list[dict[str, Any]], embedded: list[dict[str, Any]], depth: int
    ) -> Any:
        """``prompt`` with every ``@@@langfusePrompt:…@@@`` replaced by the text it names."""
        if not isinstance(prompt, str):
            return [
                {**m, "content": self._resolved(m["content"], embedded, depth)}
                if isinstance(m.get("content"), str)
                else m
                for m in prompt
            ]
        if depth > _MAX_DEPENDENCY_DEPTH:
            raise ValueError("prompt dependencies nest too deep (a cycle?)")

        def text_of(match: re.Match[str]) -> str:
            fields = dict(part.partition("=")[::2] for part in match.group(1).split("|"))
            stored = self._prompts[fields["name"]]
            version = int(fields["version"]) if "version" in fields else None
            found = stored.find(label=fields.get("label"), version=version)
            if found is None or not isinstance(found.prompt, str):
                raise ValueError(f"no text prompt for the reference {match.group(0)!r}")
            embedded.append({"name": stored.name, "version": found.version})
            return str(self._resolved(found.prompt, embedded, depth + 1))

        return _DEPENDENCY.sub(text_of, prompt)

    def _check_auth(self, header: str | None) -> Response | None:
        if not header:
            return _error(401, "UnauthorizedError", "No authorization header")
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer":
            # A public key alone gives the "scores" scope; prompts need the secret key.
            return _error(
                403,
                "ForbiddenError",
                "Access denied - need to use basic auth with secret key to GET prompts",
            )
        if scheme != "Basic":
            return _error(401, "UnauthorizedError", "Invalid authorization header")
        try:
            username, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username = password = ""
        if not username or not password:
            return _error(
                401, "UnauthorizedError", "Invalid authorization header" + _UNAUTHORIZED_SUFFIX
            )
        if username != self.public_key:
            return _error(401, "UnauthorizedError", "Invalid public key" + _UNAUTHORIZED_SUFFIX)
        if password != self.secret_key:
            return _error(401, "UnauthorizedError", "Invalid credentials" + _UNAUTHORIZED_SUFFIX)
        return None

    def _serialise(self, stored: _StoredPrompt, found: _Version) -> dict[str, Any]:
        # Field for field what the server sends: the database row (schema Prompt plus id,
        # timestamps, project and author, which clients ignore).
        created = found.created_at.isoformat().replace("+00:00", "Z")
        return {
            "id": f"fake-{stored.name}-{found.version}",
            "createdAt": created,
            "updatedAt": created,
            "projectId": "fake-project",
            "createdBy": "API",
            "name": stored.name,
            "version": found.version,
            "type": found.type,
            "prompt": found.prompt,
            "config": found.config,
            "labels": stored.labels_of(found.version),
            "tags": list(stored.tags),
            "commitMessage": found.commit_message,
            "resolutionGraph": None,
        }


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "error": error}, status_code=status)


def _failure(status: int) -> Response:
    if status == 429:
        # Langfuse Cloud's limiter (prompts are not rate-limited on any plan today).
        return JSONResponse(
            {"message": "Rate limit exceeded", "error": "Too Many Requests"},
            status_code=429,
            headers={"retry-after": "1"},
        )
    if status == 500:
        return _error(500, "An unknown error occurred", "Internal Server Error")
    if status >= 500:
        # What a load balancer in front of Langfuse sends when Langfuse is down.
        return HTMLResponse(f"<html><body><h1>{status}</h1></body></html>", status_code=status)
    return Response(
        json.dumps({"message": f"HTTP {status}"}), status_code=status, media_type="application/json"
    )


@contextlib.asynccontextmanager
async def serving_langfuse(
    public_key: str, secret_key: str, *, support_config: Any
) -> AsyncIterator[tuple[FakeLangfuse, str]]:
    """A :class:`FakeLangfuse` on uvicorn (127.0.0.1, a free port) and its base URL, holding
    ``support/answer`` (:data:`SUPPORT_ANSWER`, ``production``); add more before asking."""
    fake = FakeLangfuse(public_key=public_key, secret_key=secret_key)
    fake.add_prompt("support/answer", SUPPORT_ANSWER, config=support_config, labels=["production"])
    async with serve_in_background(fake.app) as url:
        yield fake, url
