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
- a mutation over GET is refused with 405 and `Allow: POST`; a subscription over HTTP with 400
  (they are served over WebSocket: no HTTP streaming transport is on), so GET runs queries only;
- every HTTP-level error is a GraphQL response whose error carries `extensions.code`;
- automatic persisted queries (web/persisted_queries.py) are resolved before the schema runs;
- a successful anonymous GET is marked publicly cacheable (web/cache_policy.py has the rule).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, TypeVar

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.types import QueryParams
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from web.cache_policy import anonymous_get, public_cache_control
from web.persisted_queries import PersistedQueries, PersistedQueryError

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
# On equal preference the first wins: `*/*` and a missing Accept mean application/json.
RESPONSE_MEDIA_TYPES = (JSON, GRAPHQL_RESPONSE_JSON)
SERVER_ERROR_STATUS = {"INTERNAL_SERVER_ERROR": 500, "SERVICE_UNAVAILABLE": 503}
# What each method may run: GET only reads (so its answer may be cached); subscriptions are for
# the WebSocket transport.
HTTP_OPERATIONS = {
    "GET": frozenset({OperationType.QUERY}),
    "POST": frozenset({OperationType.QUERY, OperationType.MUTATION}),
}
NO_PERSISTED_QUERIES = PersistedQueries(None, max_query_bytes=0)


class HTTPError(HTTPException):
    """An HTTP-level refusal that needs response headers (405 needs `Allow`) or an error code
    other than its status's name (an APQ refusal: `PERSISTED_QUERY_NOT_FOUND` with 200)."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(status_code, reason)
        self.headers = dict(headers or {})
        self.code = code


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
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPError):
        code = exc.code or code
        headers = dict(exc.headers)
    # A reason may quote the request (an unknown operation name): lone surrogates in it would
    # make the response unencodable.
    reason = exc.reason.encode("utf-8", "replace").decode("utf-8")
    body = {"errors": [{"message": reason, "extensions": {"code": code}}]}
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        headers.setdefault("Allow", "GET, POST")  # Strawberry's own 405 (e.g. HEAD) names none
    response = JSONResponse(body, exc.status_code, headers=headers, media_type=media_type)
    response.headers.add_vary_header("Accept")
    return response


Context = TypeVar("Context")
RootValue = TypeVar("RootValue")


class GraphQLOverHTTP(GraphQL[Context, RootValue]):
    """Strawberry's ASGI view with the spec's media types, status codes and GET rules, automatic
    persisted queries, and public caching of anonymous GET results."""

    def __init__(
        self,
        schema: BaseSchema,
        *,
        persisted_queries: PersistedQueries = NO_PERSISTED_QUERIES,
        public_cache_seconds: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(schema, **options)
        self.persisted_queries = persisted_queries
        self.public_cache_seconds = public_cache_seconds

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

    def parse_json(self, data: str | bytes) -> Any:
        """A request body must be a JSON object (or a batch's array): any other JSON value is
        a coded 400, not an error inside Strawberry's parsing."""
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            raise HTTPException(HTTPStatus.BAD_REQUEST, "The request body must be a JSON object")
        return parsed

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """A GET carrying only a persisted-query hash (no `query`) is an operation, not a
        browser asking for the explorer."""
        return "extensions" not in request.query_params and super().should_render_graphql_ide(
            request
        )

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        """As Strawberry's, but a parameter that is not JSON is named in the 400."""
        parsed: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            raw = parsed.get(name)
            if isinstance(raw, str) and raw:  # empty: left for the type check (400 too)
                try:
                    parsed[name] = self.decode_json(raw)
                except json.JSONDecodeError:
                    raise HTTPException(
                        HTTPStatus.BAD_REQUEST, f"The `{name}` parameter is not valid JSON"
                    ) from None
        return parsed

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: RootValue | None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, with a persisted query resolved first (and kept once it validated), the
        operations each method may run (a mutation over GET is a wrong method: 405 with Allow),
        and a successful anonymous GET marked publicly cacheable."""
        method = request_adapter.method
        try:
            query, registration = self.persisted_queries.resolve(
                request_data.query, request_data.extensions
            )
        except PersistedQueryError as exc:
            raise HTTPError(exc.status, exc.message, code=exc.code) from exc
        try:
            result = await self.schema.execute(
                query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=HTTP_OPERATIONS.get(method, frozenset()),
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(HTTPStatus.BAD_REQUEST, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            raise _wrong_operation(exc, method) from exc
        except MissingQueryError as exc:
            raise HTTPException(
                HTTPStatus.BAD_REQUEST, "No GraphQL query found in the request"
            ) from exc
        if registration is not None and not isinstance(result, PreExecutionError):
            self.persisted_queries.register(registration)  # it parsed and validated
        if (
            self.public_cache_seconds > 0
            and anonymous_get(method, request.headers)
            and result.data is not None
            and not result.errors
        ):
            sub_response.headers["cache-control"] = public_cache_control(self.public_cache_seconds)
        return result

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


def _wrong_operation(exc: InvalidOperationTypeError, method: str) -> HTTPException:
    """A mutation over GET: 405, POST would do. A subscription: 400, HTTP will not do."""
    if exc.operation_type == OperationType.MUTATION:
        return HTTPError(
            HTTPStatus.METHOD_NOT_ALLOWED,
            "Mutations are not allowed over GET; use POST.",
            {"Allow": "POST"},
        )
    if exc.operation_type == OperationType.SUBSCRIPTION:
        return HTTPException(
            HTTPStatus.BAD_REQUEST,
            "Subscriptions are served over WebSocket (graphql-transport-ws), not over HTTP.",
        )
    return HTTPException(HTTPStatus.BAD_REQUEST, exc.as_http_error_reason(method))
