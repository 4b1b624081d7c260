"""GraphQL over HTTP as the spec (graphql.github.io/graphql-over-http) asks, on top of Strawberry.

Strawberry 0.341 answers `application/json` only, with 200 for every GraphQL result, 400 for a
mutation over GET and plain-text bodies for HTTP-level errors. Here:
- the response media type is negotiated from `Accept` (`application/json` when it is absent or
  only a wildcard matches, `application/graphql-response+json` when the client prefers it, 406
  when neither is acceptable);
- under `application/graphql-response+json` a request error (the document did not parse or
  validate, or the variables did not coerce: nothing executed) gets a 4xx (5xx if a backend
  failed) and a body without `data`; `application/json` keeps answering 200 with `data: null`,
  as existing clients expect;
- a mutation over GET is refused with 405 and `Allow: POST`;
- every HTTP-level error is a GraphQL response whose error carries `extensions.code`.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, TypeVar

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
# On equal preference the first wins: `*/*` and a missing Accept mean application/json.
RESPONSE_MEDIA_TYPES = (JSON, GRAPHQL_RESPONSE_JSON)
SERVER_ERROR_STATUS = {"INTERNAL_SERVER_ERROR": 500, "SERVICE_UNAVAILABLE": 503}


class HTTPError(HTTPException):
    """An HTTP-level refusal that needs response headers (405 needs `Allow`)."""

    def __init__(self, status_code: int, reason: str, headers: Mapping[str, str]) -> None:
        super().__init__(status_code, reason)
        self.headers = dict(headers)


def negotiate(accept: str | None) -> str | None:
    """The response media type for this Accept header, or None when it accepts neither.

    Each candidate takes the quality of the most specific media range that matches it (so
    `application/json;q=0, */*` excludes application/json); the higher quality wins, then the
    more specific match, then application/json."""
    if not accept or not accept.strip():
        return JSON
    ranges = [media for part in accept.split(",") if (media := _media_range(part))]
    best: str | None = None
    best_rank = (0.0, -1)
    for candidate in RESPONSE_MEDIA_TYPES:
        kind = candidate.split("/")[0]
        matches = [
            (specificity, quality)
            for media, quality in ranges
            for specificity, pattern in ((2, candidate), (1, f"{kind}/*"), (0, "*/*"))
            if media == pattern
        ]
        if not matches:
            continue
        specificity, quality = max(matches, key=lambda match: match[0])
        if quality > 0 and (quality, specificity) > best_rank:
            best, best_rank = candidate, (quality, specificity)
    return best


def _media_range(part: str) -> tuple[str, float] | None:
    """(`type/subtype` lower-cased, its q value); None (ignored) if empty or its q is malformed."""
    media, *params = part.split(";")
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = min(max(float(value), 0.0), 1.0)
            except ValueError:
                return None
    return (media.strip().lower(), quality) if media.strip() else None


def _errors(response: GraphQLHTTPResponse) -> list[Mapping[str, object]]:
    """The response's errors: GraphQL's formatted error dicts (strawberry types them `object`)."""
    return [error for error in response.get("errors") or [] if isinstance(error, Mapping)]


def _error_code(error: Mapping[str, object]) -> str:
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    return code if isinstance(code, str) else ""


def is_request_error(response: GraphQLHTTPResponse) -> bool:
    """Nothing executed: no data, and no error belongs to a field (field errors have a path)."""
    errors = _errors(response)
    return response.get("data") is None and bool(errors) and not any("path" in e for e in errors)


def request_error_status(response: GraphQLHTTPResponse) -> int:
    """400 for the client's mistakes; 500/503 when the failure was ours or a backend's."""
    return max(
        SERVER_ERROR_STATUS.get(_error_code(error), HTTPStatus.BAD_REQUEST)
        for error in _errors(response)
    )


def error_response(exc: HTTPException, media_type: str) -> Response:
    """An HTTP-level refusal as a GraphQL response with a coded error (no `data`: nothing ran)."""
    code = HTTPStatus(exc.status_code).name
    body = {"errors": [{"message": exc.reason, "extensions": {"code": code}}]}
    headers = dict(exc.headers) if isinstance(exc, HTTPError) else {}
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        headers.setdefault("Allow", "GET, POST")  # Strawberry's own 405 (e.g. HEAD) names none
    response = JSONResponse(body, exc.status_code, headers=headers, media_type=media_type)
    response.headers.add_vary_header("Accept")
    return response


Context = TypeVar("Context")
RootValue = TypeVar("RootValue")


class GraphQLOverHTTP(GraphQL[Context, RootValue]):
    """Strawberry's ASGI view with the spec's media types, status codes and GET rules."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As Strawberry's, but HTTP-level errors are coded GraphQL responses, not plain text."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            response = error_response(exc, negotiate(request.headers.get("accept")) or JSON)
        await response(scope, receive, send)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        """The per-request response template carries the negotiated media type."""
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate(request.headers.get("accept"))
        return sub_response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Refuse (406) before anything runs when the client accepts neither media type. Checked
        here, after the GraphiQL page (a browser's `text/html` GET) has had its turn."""
        if negotiate(request.headers.get("accept")) is None:
            raise HTTPException(
                HTTPStatus.NOT_ACCEPTABLE, f"Accept must allow {JSON} or {GRAPHQL_RESPONSE_JSON}"
            )
        return await super().parse_http_body(request)

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """A mutation over GET is a wrong method (405 with Allow), not a bad request (400)."""
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as exc:
            cause = exc.__cause__
            if (
                isinstance(cause, InvalidOperationTypeError)
                and cause.operation_type == OperationType.MUTATION
            ):
                raise HTTPError(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    "Mutations are not allowed over GET; use POST.",
                    {"Allow": "POST"},
                ) from cause
            raise

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """Under application/graphql-response+json a request error is a 4xx (or 5xx) without
        `data`; application/json keeps 200 and `data: null`."""
        media_type = sub_response.media_type or JSON
        if (
            media_type == GRAPHQL_RESPONSE_JSON
            and isinstance(response_data, dict)
            and is_request_error(response_data)
        ):
            sub_response.status_code = request_error_status(response_data)
            response_data = response_data.copy()
            del response_data["data"]
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = media_type
        response.headers.add_vary_header("Accept")
        return response
