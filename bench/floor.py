"""The floor: what a home-feed page costs without GraphQL. Built only for the benchmark (the
product never serves it).

`PageReader` makes the store calls a feed-page cache hit makes in the product (social/feed.py
through social/lookups.py): the page script (the page, the feed's state, whom the viewer
follows), then one MGET of the tweet documents the per-process tweet cache lacks, the authors
and the viewer's token version; it decides visibility with the product's own pure functions
(social/visibility.py).
The raw Redis figure calls it in-process; the floor app below serves it over HTTP as
`POST /graphql` and answers with the bytes the GraphQL response has (the benchmark checks that
they are equal), so the difference between the two servers' CPU per request is what GraphQL
(and the product's middleware) add.

Run as `python -m bench.floor` (settings from the environment; uvicorn options and the number
of processes, `WEB_CONCURRENCY`, as `web.serve` takes them)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.tokens import Claims, InvalidToken, TokenIssuer
from resolvers.context import bearer_token
from resolvers.ids import feed_cursor, tweet_global_id
from settings import Settings
from social import visibility
from social.lookups import Lookups
from storage.accounts import PublicProfile
from storage.feeds import FeedRef
from storage.likes import LikeStore
from storage.page_documents import PageDocumentReader
from storage.tweet_cache import TweetCache
from storage.tweet_counts import TweetCounters
from storage.tweets import Tweet
from web.serve import uvicorn_options, worker_processes
from wiring import Stores, open_stores


class NotAHit(Exception):
    """The floor serves full first pages of cache hits only; the product would do more here
    (rebuild, merge celebrities, ask the graph, read further rounds). The benchmark warms every
    feed first, so this never happens there."""


@dataclass(frozen=True)
class FloorPage:
    items: list[tuple[FeedRef, Tweet]]
    authors: dict[int, PublicProfile]
    has_next_page: bool
    end_cursor: FeedRef | None


class PageReader:
    """A feed page's store calls and the product's visibility rules, nothing else."""

    def __init__(self, stores: Stores, tweet_cache: TweetCache) -> None:
        self._feeds = stores.feeds
        self._lookups = Lookups(
            accounts=stores.accounts,
            tweets=stores.tweets,
            tweet_cache=tweet_cache,
            graph=stores.graph,
            pages=PageDocumentReader(stores.documents),
            counters=TweetCounters(stores.documents),
            likes=LikeStore(stores.documents),
        )

    async def read(self, claims: Claims, want: int) -> FloorPage:
        """`want` tweets of the viewer's cached feed, as social.feed.HomeFeed.read returns them
        on a hit, in its two round trips: the page script (over-fetching 2 x `want`, with the
        feed's state and whom the viewer follows), then one MGET of the documents the tweet
        cache lacks, the authors and the viewer's token version (BadCredentials if revoked)."""
        viewer = claims.user_id
        page = await self._feeds.page(viewer, 2 * want, None)
        if not page.complete or page.celebrities != [] or page.followed is None:
            raise NotAHit("feed or followee set not cached, or celebrities to merge")
        allowed = visibility.allowed_refs(viewer, page.refs, page.followed)
        documents, profiles, _, _ = await self._lookups.page(
            [(r.author_id, r.tweet_id) for r in allowed], claims
        )
        fill = visibility.PageFill(want=want, cursor=None, shown=[], hidden=[])
        shown = visibility.decide(viewer, allowed, documents, {}, page.followed)
        unread = fill.take(page.refs, shown)
        if fill.hidden or not (fill.full or page.exhausted):
            raise NotAHit("hidden entries or a short first round")
        await self._feeds.keep_alive(viewer, page.ttl_seconds)  # no round trip unless due
        return FloorPage(
            items=[(ref, entry.tweet) for ref, entry in fill.shown],
            authors=profiles,
            has_next_page=unread > 0 or not page.exhausted,
            end_cursor=fill.cursor,
        )


def _datetime(ms: int) -> str:
    """As Strawberry serializes a DateTime (`isoformat()` of an aware datetime)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def render(page: FloorPage) -> bytes:
    """The GraphQL response to bench.read_path.FEED_QUERY, byte for byte: Strawberry encodes
    with `json.dumps(data, separators=(",", ":"))`, fields in the query's order."""
    edges = []
    for ref, tweet in page.items:
        author = page.authors[tweet.author_id]
        node = {
            "id": tweet_global_id(tweet.author_id, tweet.tweet_id),
            "text": tweet.text,
            "createdAt": _datetime(tweet.created_at_ms),
            "author": {"username": author.username, "displayName": author.display_name},
        }
        edges.append({"cursor": feed_cursor(ref), "node": node})
    end = feed_cursor(page.end_cursor) if page.end_cursor else None
    info = {"hasNextPage": page.has_next_page, "endCursor": end}
    body = {"data": {"feed": {"edges": edges, "pageInfo": info}}}
    return json.dumps(body, separators=(",", ":")).encode()


def create_app(settings: Settings | None = None) -> Starlette:
    """`POST /graphql` serving the feed page (whatever the query says), `GET /healthz`."""
    settings = settings or Settings.from_env()
    tokens = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stores = open_stores(settings)
        cache = TweetCache(
            max_entries=settings.tweet_cache_size, ttl_seconds=settings.tweet_cache_ttl_seconds
        )
        app.state.reader = PageReader(stores, cache)
        try:
            yield
        finally:
            await stores.close()

    async def feed_page(request: Request) -> Response:
        """What the GraphQL route does for a feed query, minus GraphQL: parse the JSON body,
        verify the token, read, encode."""
        body = json.loads(await request.body())
        try:
            claims = tokens.verify(bearer_token(request.headers.get("authorization")) or "")
        except InvalidToken:
            return JSONResponse({"errors": [{"message": "bad token"}]}, status_code=401)
        want = int(body.get("variables", {}).get("first", 20))
        page = await request.app.state.reader.read(claims, want)
        return Response(render(page), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response("ok")

    return Starlette(
        routes=[Route("/graphql", feed_page, methods=["POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )


def main() -> int:
    settings = Settings.from_env()
    uvicorn.run(
        "bench.floor:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=worker_processes(settings),
        **uvicorn_options(settings),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
