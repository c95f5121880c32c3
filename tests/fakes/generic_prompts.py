"""A fake prompt service speaking LiteLLM's *Generic Prompt Management API*, written from
LiteLLM's documentation of it (``docs/.../generic_prompt_management.md``) and its example
server, which is FastAPI:

* ``GET /beta/litellm_prompt_management?prompt_id=...&<custom params>``;
* an optional ``Authorization: Bearer <key>``: with :attr:`api_key` set, a missing or wrong
  one is ``401 {"detail": "Invalid API key"}``, as the example's ``HTTPException`` answers;
* an unknown prompt is ``404 {"detail": "Prompt '<id>' not found"}``; no ``prompt_id`` is
  FastAPI's 422 ``{"detail": [{"type": "missing", "loc": ["query", "prompt_id"], ...}]}``;
* the answer is the example's ``PromptResponse`` model serialised by FastAPI: all four fields,
  ``null`` for an unset model or optional params.

A prompt may be added for given query parameters (``query={"slug": "v2"}``): a request whose
custom parameters include those gets it before the prompt added without them, which is how
a service picks a variant from ``provider_specific_query_params``.

Knobs for tests: :attr:`latency`, :attr:`fail_with`, :meth:`fail_next`, :attr:`broken_body`,
:meth:`hold` / :meth:`release` / :meth:`wait_for_held`; :attr:`fetch_count` and
:attr:`requests`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.fakes._faults import FaultKnobs

__all__ = ["ENDPOINT", "INVALID_JSON", "WRONG_SHAPE", "FakeGenericPromptServer", "RecordedRequest"]

ENDPOINT: Final = "/beta/litellm_prompt_management"
INVALID_JSON: Final = b'{"prompt_id": "broken", "prompt_template": ['
WRONG_SHAPE: Final = b'{"prompts": [{"prompt_id": "x", "model": "gpt-4"}]}'


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; ``query`` keeps every pair, in order."""

    method: str
    path: str
    query: list[tuple[str, str]]
    authorization: str | None


@dataclass
class _Stored:
    template: list[dict[str, Any]]
    model: str | None
    optional_params: dict[str, Any] | None
    query: dict[str, str]


class FakeGenericPromptServer(FaultKnobs):
    """An in-memory prompt service; ``app`` is its ASGI app."""

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        #: Every request on the route, in order.
        self.requests: list[RecordedRequest] = []
        self._prompts: dict[str, list[_Stored]] = {}
        self.app = Starlette(routes=[Route(ENDPOINT, self._get_prompt, methods=["GET"])])

    def add_prompt(
        self,
        prompt_id: str,
        template: Sequence[dict[str, Any]],
        *,
        model: str | None = None,
        optional_params: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> None:
        """Serve ``template`` for ``prompt_id`` (for requests with ``query``, if given)."""
        self._prompts.setdefault(prompt_id, []).append(
            _Stored(
                template=copy.deepcopy(list(template)),
                model=model,
                optional_params=None
                if optional_params is None
                else copy.deepcopy(dict(optional_params)),
                query=dict(query or {}),
            )
        )

    @property
    def fetch_count(self) -> int:
        return len(self.requests)

    async def _get_prompt(self, request: Request) -> Response:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=list(request.query_params.multi_items()),
                authorization=request.headers.get("authorization"),
            )
        )
        await self._wait()
        status = self._next_failure()
        if status is not None:
            return _failure(status)
        if self.api_key is not None and request.headers.get("authorization") != (
            f"Bearer {self.api_key}"
        ):
            return JSONResponse({"detail": "Invalid API key"}, status_code=401)
        prompt_id = request.query_params.get("prompt_id")
        if prompt_id is None:
            return JSONResponse(
                {
                    "detail": [
                        {
                            "type": "missing",
                            "loc": ["query", "prompt_id"],
                            "msg": "Field required",
                            "input": None,
                        }
                    ]
                },
                status_code=422,
            )
        params = dict(request.query_params)
        candidates = [
            stored
            for stored in self._prompts.get(prompt_id, [])
            if all(params.get(k) == v for k, v in stored.query.items())
        ]
        if not candidates:
            return JSONResponse({"detail": f"Prompt '{prompt_id}' not found"}, status_code=404)
        if self.broken_body is not None:
            return Response(self.broken_body, media_type="application/json")
        found = max(candidates, key=lambda stored: len(stored.query))
        return JSONResponse(
            {
                "prompt_id": prompt_id,
                "prompt_template": copy.deepcopy(found.template),
                "prompt_template_model": found.model,
                "prompt_template_optional_params": copy.deepcopy(found.optional_params),
            }
        )


def _failure(status: int) -> Response:
    if status >= 502:
        # What a proxy in front of the service sends when it is down.
        return HTMLResponse(f"<html><body><h1>{status}</h1></body></html>", status_code=status)
    return JSONResponse({"detail": f"HTTP {status}"}, status_code=status)
