"""What resolvers work with: the per-process services, and the per-request context that carries
them, the request's DataLoaders and the caller's identity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketState
from strawberry.dataloader import DataLoader

from auth.tokens import Claims
from graph.port import FollowCounts
from resolvers.close_codes import CLOSE_UNAUTHORIZED
from settings import Settings
from social.accounts import Accounts
from social.engagement import Engagement
from social.errors import BadCredentials
from social.feed import HomeFeed
from social.following import Following
from social.lookups import Lookups
from social.posting import Posting
from social.retweeting import Retweeting
from social.uploads import Uploads
from storage.accounts import PublicProfile
from storage.likes import ViewerEngagement
from storage.live_hub import LiveHub
from storage.media import MediaLibrary
from storage.tweet_cache import TweetRef
from storage.tweet_counts import TweetCounts
from storage.tweet_updates import TweetUpdatesHub
from storage.tweets import Tweet

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Services:
    """The domain services and the live hub, built once per process (`wiring`); also what the
    app's other routes use: the media library (the local upload route) and the backends'
    health probes (`/healthz`)."""

    settings: Settings
    accounts: Accounts
    home_feed: HomeFeed
    posting: Posting
    retweeting: Retweeting
    following: Following
    uploads: Uploads
    lookups: Lookups
    live: LiveHub
    media: MediaLibrary
    probes: dict[str, Callable[[], Awaitable[object]]]
    # Engagement (likes, counts, viewer state, tweetUpdates)
    engagement: Engagement
    tweet_updates: TweetUpdatesHub


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value (the scheme in any case); None
    for anything else. The one rule for HTTP headers and connection_init payloads alike."""
    scheme, _, token = (authorization or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def request_token(connection: HTTPConnection) -> str | None:
    return bearer_token(connection.headers.get("authorization"))


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
    _claims: tuple[str | None, Claims] | None = field(default=None, init=False)
    _loaders: dict[str, DataLoader[Any, Any]] = field(default_factory=dict, init=False)
    # Set by a page field whose selection shows the viewer's state: page reads then fetch it in
    # their own round trip (storage.page_documents) instead of one more.
    pages_show_viewer_state: bool = field(default=False, init=False)

    def _loader(self, name: str, load: Callable[[list[K]], Awaitable[list[V]]]) -> DataLoader[K, V]:
        if name not in self._loaders:
            self._loaders[name] = DataLoader(load_fn=load)
        return self._loaders[name]

    def reset_loaders(self) -> None:
        """Forget every DataLoader's cache (long-lived WebSocket contexts call this)."""
        self._loaders.clear()

    @property
    def profiles(self) -> DataLoader[int, PublicProfile | None]:
        return self._loader("profiles", self.services.lookups.profiles)

    @property
    def tweets(self) -> DataLoader[TweetRef, Tweet | None]:
        return self._loader("tweets", self.services.lookups.tweets)

    @property
    def counts(self) -> DataLoader[int, FollowCounts]:
        return self._loader("counts", self.services.lookups.counts)

    @property
    def viewer_follows(self) -> DataLoader[int, bool]:
        """Whether the (authenticated) viewer follows each user id, one graph query per batch."""

        async def load(ids: list[int]) -> list[bool]:
            return await self.services.lookups.follows(await self.viewer_id(), ids)

        return self._loader("viewer_follows", load)

    @property
    def tweet_counts(self) -> DataLoader[TweetRef, TweetCounts]:
        """Engagement counts by (author, id): one MGET per batch (a feed page primes them)."""
        return self._loader("tweet_counts", self.services.lookups.tweet_counts)

    @property
    def viewer_engagement(self) -> DataLoader[TweetRef, ViewerEngagement]:
        """Whether the viewer liked and retweeted each tweet, one call on the viewer's node per
        batch (the token checked once per batch); nothing for anonymous callers."""

        async def load(refs: list[TweetRef]) -> list[ViewerEngagement]:
            viewer = await self.optional_viewer_id()
            if viewer is None:
                return [ViewerEngagement()] * len(refs)
            return await self.services.lookups.viewer_engagement(viewer, refs)

        return self._loader("viewer_engagement", load)

    async def load_tweets(self, refs: list[TweetRef]) -> list[Tweet | None]:
        """Tweets by (author, id) through this request's loader (what the domain is given)."""
        return await self.tweets.load_many(refs)

    async def load_page(self, refs: list[TweetRef]) -> list[Tweet | None]:
        """Tweets of a page with their authors in one round trip, the authors primed into
        this request's profile loader (so `author` fields cost nothing more). While the caller
        is not yet authenticated, the same round trip checks their token (BadCredentials if it
        no longer holds): a feed page on a cache hit costs the feed read and this. The tweets'
        counts come in the same round trip, primed too, and, when `pages_show_viewer_state`,
        what the viewer did to them."""
        authenticating = self.claims() if self._viewer_id is None else None
        engaged_by = self.claimed_viewer_id() if self.pages_show_viewer_state else None
        tweets, profiles, counts, engagement = await self.services.lookups.page(
            refs, authenticating, engaged_by
        )
        if authenticating is not None:
            self._viewer_id = authenticating.user_id
        self.profiles.prime_many(profiles)
        self.tweet_counts.prime_many(dict(zip(refs, counts, strict=True)))
        if engagement is not None:
            self.viewer_engagement.prime_many(dict(zip(refs, engagement, strict=True)))
        self.tweets.prime_many({ref: t for ref, t in zip(refs, tweets, strict=True) if t})
        return tweets

    def claimed_viewer_id(self) -> int:
        """The user the token claims to be (signature and expiry checked, no I/O); a use must
        confirm it with `viewer_id` (or `load_page`) before answering."""
        return self._viewer_id if self._viewer_id is not None else self.claims().user_id

    def claims(self) -> Claims:
        """The token's verified claims (signature, expiry), or BadCredentials; decoded once per
        context (the cost limit, the feed and the token check all ask)."""
        if self._claims is None or self._claims[0] != self.token:
            self._claims = (self.token, self.services.accounts.claims(self.token))
        return self._claims[1]

    async def viewer_id(self, *, fresh: bool = False) -> int:
        """The authenticated caller's id, or BadCredentials (UNAUTHENTICATED). `fresh` checks
        again instead of trusting this context's earlier answer."""
        if self._viewer_id is not None and not fresh:
            return self._viewer_id
        self._viewer_id = None  # a failed check must not leave an earlier answer behind
        self._viewer_id = await self.services.accounts.authenticate(self.token)
        return self._viewer_id

    async def optional_viewer_id(self) -> int | None:
        """The caller's id if a valid token came with the request, else None (public fields)."""
        try:
            return await self.viewer_id()
        except BadCredentials:
            return None

    async def socket_still_authorized(self) -> bool:
        """Check this WebSocket's token afresh, as an HTTP request would be (signature, expiry,
        token version, account), before each operation and on revocation; the socket's
        DataLoaders start fresh too. A token that no longer holds closes the socket (4401)."""
        self.reset_loaders()
        try:
            await self.viewer_id(fresh=True)
        except BadCredentials:
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
