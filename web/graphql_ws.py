"""GraphQL over WebSocket as this API serves it: graphql-transport-ws only, who may open a socket,
every operation on a socket authorized afresh, and close codes that say why a socket ended (the
codes and what clients do with them: `resolvers.close_codes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphql import GraphQLError
from starlette.websockets import WebSocket
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)

from resolvers.close_codes import (
    CLOSE_SUBPROTOCOL,
    CLOSE_TOO_MANY_CONNECTIONS,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
)
from resolvers.context import bearer_token
from resolvers.errors import RateLimited, coded
from social.errors import BadCredentials
from storage.live_hub import TooManyConnections
from storage.redis_clients import REDIS_UNAVAILABLE

if TYPE_CHECKING:
    from resolvers.context import RequestContext


class SocketRefused(Exception):
    """connection_init is refused: the socket closes with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def accept_socket(context: RequestContext) -> None:
    """Authenticate a socket from its connection_init payload (or the upgrade request's
    Authorization header) and count it against the user's connection cap. Raises SocketRefused."""
    params = context.connection_params or {}
    header = params.get("Authorization") or params.get("authorization")
    if isinstance(header, str):
        context.token = bearer_token(header)
    try:
        viewer = await context.viewer_id()
        context.connection_slot = await context.services.live.open_connection(
            viewer, context.socket_still_authorized
        )
        # Once registered, a revocation reaches this socket; one published before it did not,
        # so check again (a refused socket's slot is freed when the socket ends).
        await context.viewer_id(fresh=True)
    except BadCredentials as exc:
        raise SocketRefused(CLOSE_UNAUTHORIZED, f"Unauthorized: {exc}") from None
    except TooManyConnections:
        raise SocketRefused(CLOSE_TOO_MANY_CONNECTIONS, "Too many connections") from None
    except REDIS_UNAVAILABLE:
        raise SocketRefused(CLOSE_TRY_AGAIN_LATER, "Try again later") from None


async def refuse_subprotocol(websocket: WebSocket) -> None:
    """Refuse a client that does not speak graphql-transport-ws (the legacy `graphql-ws` one).
    The handshake completes (with the client's own first choice, so that browsers deliver the
    close frame rather than a bare handshake failure) only to close with a reason."""
    offered = websocket.scope.get("subprotocols") or [None]
    await websocket.accept(subprotocol=offered[0])
    await websocket.close(
        code=CLOSE_SUBPROTOCOL,
        reason=f"Subprotocol not acceptable: only {GRAPHQL_TRANSPORT_WS_PROTOCOL} is served",
    )


class TransportWSHandler(BaseGraphQLTransportWSHandler["RequestContext", None]):
    """Strawberry's graphql-transport-ws handler with our close codes at connection_init, and
    each operation authorized as an HTTP request would be: Strawberry keeps one context for
    every operation on a socket, so its earlier answer must not be trusted."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except SocketRefused as refused:
            await self.websocket.close(code=refused.code, reason=refused.reason)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not _well_formed(message):
            # graphql-transport-ws: an invalid message closes the socket with 4400.
            await self.websocket.close(code=4400, reason="Invalid subscribe message")
            return
        if self.connection_acknowledged:  # otherwise Strawberry closes the socket (4401)
            try:
                if not await self.context.socket_still_authorized():
                    return
            except REDIS_UNAVAILABLE:
                await self.websocket.close(code=CLOSE_TRY_AGAIN_LATER, reason="Try again later")
                return
        limit = self.max_subscriptions_per_connection
        if limit is not None and len(self.operations) >= limit:
            # Strawberry would refuse it too, with an error that has no code.
            error = RateLimited(f"At most {limit} operations may run at once on one socket")
            payload = [coded(GraphQLError(str(error), original_error=error)).formatted]
            await self.send_message({"id": message["id"], "type": "error", "payload": payload})
            return
        await super().handle_subscribe(message)


def _well_formed(message: SubscribeMessage) -> bool:
    """A subscribe message as graphql-transport-ws defines it: a string id and a payload object
    whose query is a string (Strawberry checks none of it and fails deep inside otherwise)."""
    payload = message.get("payload")
    return (
        isinstance(message.get("id"), str)
        and isinstance(payload, dict)
        and isinstance(payload.get("query"), str)
        and isinstance(payload.get("variables") or {}, dict)
        and isinstance(payload.get("operationName") or "", str)
        and isinstance(payload.get("extensions") or {}, dict)
    )
