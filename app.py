"""The ASGI app: Starlette routes, Strawberry GraphQL (HTTP, WebSocket, GraphiQL), lifespan.

Run with `python -m web.serve` (uvicorn's `app:served_app` factory). Every client and service is
built once in the lifespan (`wiring.open_services`) and reaches resolvers through the request
context.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import multiprocessing
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET

from ops.health import healthz
from ops.lifeline import die_with_parent
from ops.metrics import Metrics, MetricsMiddleware
from resolvers.context import RequestContext, request_token
from schema.build import build_schema
from settings import Settings
from web.body_limit import BodyLimit
from web.cache_policy import CachePolicy
from web.graphql_http import GraphQLOverHTTP
from web.graphql_ws import TransportWSHandler, accept_socket, refuse_subprotocol
from web.held_files import HeldFiles
from web.media_files import MediaFiles
from web.persisted_queries import PersistedQueries
from web.uploads import put_upload
from wiring import open_services

STATIC_DIR = Path(__file__).parent / "static"
GRAPHIQL_PAGE = STATIC_DIR / "graphiql" / "index.html"
MAX_SUBSCRIPTIONS_PER_CONNECTION = 5
CONNECTION_INIT_WAIT = timedelta(seconds=10)

log = logging.getLogger(__name__)


class GraphQLApp(GraphQLOverHTTP[RequestContext, None]):
    """Strawberry's ASGI app (GraphQL over HTTP as the spec asks: web/graphql_http.py) with our
    context and a GraphiQL page served from local assets."""

    async def get_context(self, request: Request | WebSocket, response: object) -> RequestContext:
        return RequestContext(
            services=request.app.state.services,
            token=request_token(request),
            client_ip=request.client.host if request.client else "unknown",
            websocket=request if isinstance(request, WebSocket) else None,
        )

    graphql_transport_ws_handler_class = TransportWSHandler  # close codes: web/graphql_ws.py

    async def on_ws_connect(self, context: RequestContext) -> Any:
        """Authenticate a WebSocket at connection_init; refused ones close (SocketRefused)."""
        await accept_socket(context)
        return UNSET  # a plain connection_ack

    async def run(
        self, request: Request | WebSocket, context: Any = UNSET, root_value: Any = UNSET
    ):
        """WebSockets: the context is made here so the connection's slot is freed when the
        socket ends, however it ends."""
        if not isinstance(request, WebSocket):
            return await super().run(request, context=context, root_value=root_value)
        if GRAPHQL_TRANSPORT_WS_PROTOCOL not in request.scope.get("subprotocols", ()):
            return await refuse_subprotocol(request)
        context = await self.get_context(request, None)
        try:
            return await super().run(request, context=context, root_value=root_value)
        finally:
            if context.connection_slot is not None:
                await context.services.live.close_connection(context.connection_slot)

    def decode_json(self, data: str | bytes) -> object:
        """JSON nested too deeply for the decoder, or bytes that are not UTF-8 (JSON's
        encoding), are malformed JSON (a coded 400 on HTTP, close 4400 on a WebSocket), not an
        internal error."""
        try:
            return json.loads(data)
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None

    async def render_graphql_ide(self, request: Request) -> Response:
        return FileResponse(GRAPHIQL_PAGE, media_type="text/html")


def cors(settings: Settings) -> list[Middleware]:
    """Browsers on these origins may call the API (none by default: same-origin only)."""
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    ]


def local_media_routes(settings: Settings) -> list[Route | Mount]:
    """The embedded stand-in for S3 + CDN: signed uploads in, published files out."""
    public = Path(settings.media_local_dir).resolve() / "public"
    public.mkdir(parents=True, exist_ok=True)
    return [
        Route("/uploads/{key:path}", put_upload, methods=["PUT"]),
        Mount("/media/public", MediaFiles(HeldFiles(directory=public)), name="media"),
    ]


def die_with_launcher() -> None:
    """An API process spawned by uvicorn's supervisor (WEB_CONCURRENCY > 1) stops with it,
    even when the supervisor is killed outright."""
    launcher = multiprocessing.parent_process()
    if launcher is not None and launcher.pid is not None:
        die_with_parent(launcher.pid)


def served_app() -> Starlette:
    """The app as `python -m web.serve` runs it, in a process of its own: what startup built
    (the schema, the clients and their pools) lives as long as the process, so it is frozen
    out of the collector's generations and no longer walked by every full collection (server
    CPU per feed page -5 %, bench/likes.py). Not for an app sharing its process (the tests'):
    frozen objects are invisible to gc.get_referrers."""
    return create_app(freeze_startup_heap=True)


def create_app(settings: Settings | None = None, *, freeze_startup_heap: bool = False) -> Starlette:
    die_with_launcher()
    settings = settings or Settings.from_env()
    metrics = Metrics()
    schema = build_schema(
        max_query_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_query_tokens=settings.max_query_tokens,
        max_query_bytes=settings.max_query_bytes,
        max_query_cost=settings.max_query_cost,
        max_query_cost_anonymous=settings.max_query_cost_anonymous,
        max_page_size=settings.max_page_size,
        max_graph_calls_per_request=settings.max_graph_calls_per_request,
        introspection=settings.introspection_enabled,
    )
    graphql = GraphQLApp(
        schema,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
        # A socket that never authenticates holds a connection (uncounted: it has no user yet)
        # for this long; Strawberry's default is a minute.
        connection_init_wait_timeout=CONNECTION_INIT_WAIT,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        persisted_queries=PersistedQueries.bounded(
            settings.apq_cache_size,
            settings.apq_cache_bytes,
            max_query_bytes=settings.max_query_bytes,
        ),
        public_cache_seconds=settings.public_cache_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings, metrics) as services:
            app.state.services = services
            if freeze_startup_heap:
                gc.collect()
                gc.freeze()
            yield

    routes = [
        Route("/graphql", graphql),  # every method: the view answers others with a coded 405
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/metrics", metrics.endpoint),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    if settings.media_backend == "local":
        routes += local_media_routes(settings)
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics),
            *cors(settings),
            Middleware(CachePolicy, path="/graphql"),
            Middleware(BodyLimit, path="/graphql", max_bytes=settings.max_body_bytes),
        ],
        lifespan=lifespan,
    )
