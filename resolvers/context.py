"""Per-process services and the per-request context that carries them to resolvers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketState
from strawberry.dataloader import DataLoader

from auth.passwords import PasswordHasher
from auth.tokens import Claims, InvalidToken, TokenIssuer
from fanout.jobs import Jobs
from graph.cypher import CypherGraph
from graph.port import FollowCounts
from ops.metrics import Metrics
from schema.errors import Unauthenticated
from settings import Settings
from storage.accounts import AccountStore, NoSuchAccount, Profile
from storage.celebrity_timelines import CelebrityTimelines
from storage.feeds import FeedCache
from storage.ids import IdGenerator
from storage.live_hub import LiveHub
from storage.media import MediaLibrary
from storage.rate_limits import RateLimiter
from storage.redis_clients import DocumentsRedis
from storage.tweet_cache import TweetCache, TweetRef
from storage.tweets import Tweet, TweetStore
from web.graphql_ws import CLOSE_UNAUTHORIZED


@dataclass
class Services:
    """Clients created once in the app's lifespan and shared by every request."""

    settings: Settings
    graph: CypherGraph
    documents: DocumentsRedis
    accounts: AccountStore
    tweets: TweetStore
    tweet_cache: TweetCache
    media: MediaLibrary
    feeds: FeedCache
    celebrities: CelebrityTimelines
    live: LiveHub
    rate_limits: RateLimiter
    metrics: Metrics
    ids: IdGenerator
    passwords: PasswordHasher
    tokens: TokenIssuer
    jobs: Jobs


def bearer_token(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


_LOADERS = ("profiles", "counts", "viewer_follows", "tweets")


@dataclass
class RequestContext:
    """What one GraphQL request (or one WebSocket) sees: services, its DataLoaders, and the
    caller's token. Over a WebSocket the token comes with connection_init (`connection_params`)
    and `websocket` lets a subscription close the socket."""

    services: Services
    token: str | None
    client_ip: str = "unknown"
    websocket: WebSocket | None = None
    connection_params: dict[str, object] | None = None
    connection_slot: str | None = None  # this WebSocket's count against the per-user cap
    _viewer_id: int | None = field(default=None, init=False)

    def reset_loaders(self) -> None:
        """Forget every DataLoader's cache (long-lived WebSocket contexts call this)."""
        for name in _LOADERS:
            self.__dict__.pop(name, None)

    @cached_property
    def profiles(self) -> DataLoader[int, Profile | None]:
        async def load(ids: list[int]) -> list[Profile | None]:
            found = await self.services.accounts.profiles(ids)
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load)

    @cached_property
    def tweets(self) -> DataLoader[TweetRef, Tweet | None]:
        """Tweets (tombstones included) by (author, id): hot ones from the process cache, the
        rest in one round trip per shard."""
        cache = self.services.tweet_cache

        async def load(refs: list[TweetRef]) -> list[Tweet | None]:
            found = {ref: cache.get(ref) for ref in refs}
            missing = [ref for ref, tweet in found.items() if tweet is None]
            read_started_at = cache.now()
            for ref, tweet in zip(
                missing, await self.services.tweets.get_many(missing), strict=True
            ):
                found[ref] = tweet
                if tweet is not None:
                    cache.put(tweet, read_started_at)
            return [found[ref] for ref in refs]

        return DataLoader(load_fn=load)

    @cached_property
    def counts(self) -> DataLoader[int, FollowCounts]:
        async def load(ids: list[int]) -> list[FollowCounts]:
            found = await self.services.graph.counts(ids)
            return [found.get(i, FollowCounts(0, 0)) for i in ids]

        return DataLoader(load_fn=load)

    @cached_property
    def viewer_follows(self) -> DataLoader[int, bool]:
        """Whether the (authenticated) viewer follows each user id, one graph query per batch."""

        async def load(ids: list[int]) -> list[bool]:
            viewer = await self.viewer_id()
            followed = await self.services.graph.following_among(viewer, ids)
            return [i in followed for i in ids]

        return DataLoader(load_fn=load)

    def claims(self) -> Claims:
        """The token's verified claims, or UNAUTHENTICATED."""
        if self.token is None:
            raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
        try:
            return self.services.tokens.verify(self.token)
        except InvalidToken:
            raise Unauthenticated("invalid or expired token") from None

    async def viewer_id(self, *, fresh: bool = False) -> int:
        """The authenticated caller's id, or UNAUTHENTICATED. The token must be well signed,
        unexpired, and of the account's current token version. `fresh` checks again instead of
        trusting this context's earlier answer."""
        if self._viewer_id is not None and not fresh:
            return self._viewer_id
        self._viewer_id = None  # a failed check must not leave an earlier answer behind
        claims = self.claims()
        try:
            version = await self.services.accounts.token_version(claims.user_id)
        except NoSuchAccount:
            raise Unauthenticated("invalid or expired token") from None
        if version != claims.token_version:
            raise Unauthenticated("invalid or expired token")  # revoked by logOutEverywhere
        self._viewer_id = claims.user_id
        return claims.user_id

    async def socket_still_authorized(self) -> bool:
        """Check this WebSocket's token afresh, as an HTTP request would be (signature, expiry,
        token version, account), before each operation and on revocation; the socket's
        DataLoaders start fresh too. A token that no longer holds closes the socket (4401)."""
        self.reset_loaders()
        try:
            await self.viewer_id(fresh=True)
        except Unauthenticated:
            await self.close_socket(CLOSE_UNAUTHORIZED, "Unauthorized: token expired or revoked")
            return False
        return True

    async def close_socket(self, code: int, reason: str) -> None:
        """Close this context's WebSocket unless it is closed already (several checks may
        decide to close it at once)."""
        if self.websocket is not None and self.websocket.application_state == (
            WebSocketState.CONNECTED
        ):
            await self.websocket.close(code=code, reason=reason)

    async def optional_viewer_id(self) -> int | None:
        """The caller's id if a valid token came with the request, else None (public fields)."""
        try:
            return await self.viewer_id()
        except Unauthenticated:
            return None
