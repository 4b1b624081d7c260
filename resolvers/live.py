"""The feedUpdates subscription: what a connected viewer's feed gains (and loses) as it happens;
and tweetUpdates: the engagement counts of the tweets a client shows, as they change, until
they are deleted.

On subscribe with a cursor, the feed entries newer than it are replayed first (oldest first), so
a client that reconnects misses nothing the feed still holds. Then live events follow, filtered by
the same rules as a feed read, each original once per subscription (`DeliveredOriginals`: a
celebrity's tweet and then a followee's retweet of it make one event). The token is re-checked
when it expires and every TOKEN_RECHECK_SECONDS (a revocation missed by the live hub); a token
that no longer holds closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.websockets import WebSocketState

from resolvers.context import RequestContext
from resolvers.errors import NotFound
from resolvers.ids import tweet_global_id
from social import errors as domain
from social.engagement import watchable_tweets
from social.errors import BadCredentials
from social.feed import DeliveredOriginals, FeedItem
from storage.feeds import FeedRef
from storage.live_hub import LiveEvent
from storage.tweet_cache import TweetRef
from storage.tweet_updates import TweetUpdate

T = TypeVar("T")
IDLE_CHECK_SECONDS = 1.0  # how often an idle subscription checks its client is still there


@dataclass(frozen=True)
class Deleted:
    ref: FeedRef  # the entry gone (for a retweet: the retweet's)
    original: tuple[int, int] | None = None  # a retweet's original (author id, tweet id)


Update = FeedItem | Deleted


async def feed_updates(ctx: RequestContext, after: FeedRef | None) -> AsyncIterator[Update]:
    viewer = await ctx.viewer_id()
    home_feed = ctx.services.home_feed
    hub = ctx.services.live
    celebrities = await home_feed.open_live(viewer)
    subscription = await hub.join(viewer, celebrities)
    try:
        seen: set[FeedRef] = set()
        delivered = DeliveredOriginals()  # each original once (a celebrity's, then a retweet)
        if after is not None:
            for item in await home_feed.replay(viewer, after, ctx.load_tweets, ctx.viewer_id):
                seen.add(item.ref)
                delivered.first(item)
                yield item
        async for event in _while_open(ctx, subscription.queue.get):
            await _recheck_token(ctx)
            update = await _to_update(ctx, viewer, event, celebrities)
            if isinstance(update, Deleted):
                ref = update.ref
                delivered.forget(update.original or (ref.author_id, ref.tweet_id))
                yield update
            elif update is not None and update.ref not in seen and delivered.first(update):
                yield update
    finally:
        await hub.leave(subscription)


async def _while_open(
    ctx: RequestContext, get: Callable[[], Awaitable[T]]
) -> AsyncGenerator[T, None]:
    """What `get` returns, one after another, while the socket is open; meanwhile the token is
    re-checked when it expires and every TOKEN_RECHECK_SECONDS (the socket closes, 4401, if it
    no longer holds)."""
    recheck_at = time.monotonic() + _seconds_to_recheck(ctx)
    while True:
        if not _connected(ctx):
            # End as the cancellation that should have come (the transport expects it).
            raise asyncio.CancelledError
        try:
            async with asyncio.timeout(min(IDLE_CHECK_SECONDS, _until(recheck_at))):
                item = await get()
        except TimeoutError:
            if time.monotonic() >= recheck_at:
                await _recheck_token(ctx)
                recheck_at = time.monotonic() + _seconds_to_recheck(ctx)
            continue
        yield item


def _connected(ctx: RequestContext) -> bool:
    """False once the socket has ended, closed by the client or by the server (a protocol
    violation such as a duplicate operation id closes it server-side, and then the client state
    never changes). A socket closed while its subscription was starting is not always reported
    to the subscription by cancellation; this bounds how long it lingers, and so how long the
    socket's connection slot stays taken."""
    socket = ctx.websocket
    return socket is None or WebSocketState.DISCONNECTED not in (
        socket.client_state,
        socket.application_state,
    )


def _until(moment: float) -> float:
    return max(0.0, moment - time.monotonic())


async def _to_update(
    ctx: RequestContext, viewer: int, event: LiveEvent, celebrities: list[int]
) -> Update | None:
    ref = FeedRef(tweet_id=event.tweet_id, author_id=event.author_id)
    if event.kind == "deleted":
        return Deleted(ref, event.original)
    ctx.reset_loaders()  # a socket lives long: read fresh, and let nothing pile up
    return await ctx.services.home_feed.live_item(viewer, ref, ctx.load_tweets, celebrities)


def _seconds_to_recheck(ctx: RequestContext) -> float:
    claims = ctx.claims()
    recheck = ctx.services.settings.token_recheck_seconds
    return max(0.0, min(recheck, claims.expires_at - time.time()))


async def _recheck_token(ctx: RequestContext) -> None:
    """End the subscription (its socket closed, 4401) unless the token still holds."""
    if not await ctx.socket_still_authorized():
        raise BadCredentials("invalid or expired token")


async def tweet_updates(ctx: RequestContext, refs: list[TweetRef]) -> AsyncIterator[TweetUpdate]:
    """The tweetUpdates subscription: the counts of `refs` now, then as they change, each tweet
    at most once per TWEET_UPDATES_INTERVAL_SECONDS and always ending on its latest counts.
    Every id must name a live tweet (NOT_FOUND naming the first that does not, before anything
    is watched); a live retweet's id watches its original, and the updates carry the
    original's id. A tweet deleted later gets one last update saying so and is no longer
    watched (storage/tweet_updates.py); once every watched tweet is deleted, nothing more can
    come and the subscription completes. Public counts: the token is only re-checked
    periodically (the socket's own rules)."""
    await ctx.viewer_id()
    limit = ctx.services.settings.tweet_updates_max_ids
    try:
        watched = await watchable_tweets(refs, limit, ctx.load_tweets)
    except domain.NotFound as exc:
        index = exc.details.get("index")
        if not isinstance(index, int):
            raise
        named = tweet_global_id(*refs[index])
        raise NotFound(f"no such tweet: {named}", field="ids", id=named) from None
    hub = ctx.services.tweet_updates
    watch = await hub.watch(watched)
    try:
        async with contextlib.aclosing(_while_open(ctx, watch.updates.next)) as batches:
            async for due in batches:
                for update in due:
                    yield update
                if watch.finished():
                    return
    finally:
        hub.unwatch(watch)
