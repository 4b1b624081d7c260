"""The home feed: the viewer's own tweets and those of everyone they follow, newest first.

A read takes refs from the viewer's precomputed feed (or, on a miss, rebuilds it from the tweet
shards), merges in the recent tweets of the celebrities they follow, and keeps only what the viewer
may see now: tweets that exist, are not deleted, and whose author the viewer still follows (or is).
It over-fetches until the page is full, so background clean-up being behind never shows.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from resolvers.context import RequestContext
from resolvers.social import page_size
from storage.feed_builder import gather_feed, merge_newest
from storage.feeds import FeedPage, FeedRef
from storage.tweets import Tweet

REBUILD_WAIT_SECONDS = 2.0  # how long a read waits for another process's rebuild
REBUILD_POLL_SECONDS = 0.02
MAX_READ_ROUNDS = 10  # over-fetch rounds before a (short) page is returned anyway
CELEBRITY_RECENT = 50  # newest tweets kept per celebrity for merging


@dataclass(frozen=True)
class FeedItem:
    ref: FeedRef
    tweet: Tweet


@dataclass(frozen=True)
class FeedResult:
    items: list[FeedItem]
    has_next_page: bool
    end_cursor: FeedRef | None


@dataclass
class Followees:
    """What the viewer follows, from the feed cache or (on a miss) from the graph. `rows` are
    the graph's (id, celebrity) pairs when this read had to ask the graph. `version` is the
    viewer's follow-state version read before any of it: removals judged from this view are
    made only if it still holds."""

    celebrities: list[int]
    check: Callable[[list[int]], Awaitable[set[int]]]
    version: str
    rows: list[tuple[int, bool]] | None = None


async def followees(
    ctx: RequestContext,
    viewer: int,
    cached_celebrities: list[int] | None,
    version: str | None = None,
) -> Followees:
    """`cached_celebrities` and `version` come with a feed page (FeedPage.celebrities and
    .following_version): if the followee set is cached, this costs no round trip; otherwise the
    graph is asked and the cache filled."""
    services = ctx.services
    feeds = services.feeds
    if version is None:
        version = await feeds.following_version(viewer)
    celebrities = cached_celebrities
    if celebrities is not None:

        async def check_cached(authors: list[int]) -> set[int]:
            flags = await feeds.follows(viewer, authors)
            if flags is None:  # evicted meanwhile: ask the graph
                return await services.graph.following_among(viewer, authors)
            return {a for a, followed in zip(authors, flags, strict=True) if followed}

        return Followees(celebrities, check_cached, version)
    rows = await services.graph.followee_ids(viewer)
    followed = {user_id for user_id, _ in rows}
    celebrities = sorted(user_id for user_id, celebrity in rows if celebrity)
    await feeds.fill_following(viewer, sorted(followed), celebrities, version)

    async def check_local(authors: list[int]) -> set[int]:
        return followed.intersection(authors)

    return Followees(celebrities, check_local, version, rows)


class RefSource:
    """Feed refs older than a cursor: from the feed cache (its first page possibly read
    already), or from a list built for this read while another process rebuilds the cache."""

    def __init__(
        self,
        ctx: RequestContext,
        viewer: int,
        built: list[FeedRef] | None,
        first: tuple[FeedRef | None, FeedPage] | None = None,
    ) -> None:
        self._ctx = ctx
        self._viewer = viewer
        self._built = built
        self._first = first

    async def before(self, cursor: FeedRef | None, count: int) -> tuple[list[FeedRef], bool]:
        """(up to `count` refs older than `cursor`, whether nothing older remains)."""
        if self._first is not None and self._first[0] == cursor:
            page = self._first[1]
            self._first = None
            if len(page.refs) >= count or page.exhausted:
                return page.refs[:count], page.exhausted and len(page.refs) <= count
        if self._built is not None:
            older = [r for r in self._built if cursor is None or r < cursor]
            return older[:count], len(older) <= count
        page = await self._ctx.services.feeds.page(self._viewer, count, cursor)
        return page.refs, page.exhausted


async def feed_source(
    ctx: RequestContext, viewer: int, view: Followees, page: FeedPage, cursor: FeedRef | None
) -> RefSource:
    """The viewer's cached feed, given its first `page` (read from `cursor`); rebuilt first if
    it is missing (one process rebuilds; the others wait briefly, then build the same refs for
    themselves without writing them)."""
    feeds = ctx.services.feeds
    if page.complete:
        await feeds.keep_alive(viewer, page.ttl_seconds)
        return RefSource(ctx, viewer, None, first=(cursor, page))
    ctx.services.metrics.feed_misses.inc()
    if await feeds.try_lock_rebuild(viewer, secrets.token_hex(8)):
        try:
            # Another process may have finished a rebuild between our read and our lock.
            if not (await feeds.page(viewer, 1, None)).complete:
                await rebuild(ctx, viewer, view)
        finally:
            await feeds.unlock_rebuild(viewer)
        return RefSource(ctx, viewer, None)
    deadline = time.monotonic() + REBUILD_WAIT_SECONDS
    while time.monotonic() < deadline:
        await asyncio.sleep(REBUILD_POLL_SECONDS)
        if (await feeds.page(viewer, 1, None)).complete:
            return RefSource(ctx, viewer, None)
    return RefSource(ctx, viewer, await gather(ctx, viewer, view))


async def gather(ctx: RequestContext, viewer: int, view: Followees) -> list[FeedRef]:
    """The feed as pulled from the tweet shards: the viewer and the non-celebrity followees."""
    services = ctx.services
    rows = view.rows if view.rows is not None else await services.graph.followee_ids(viewer)
    authors = [viewer] + [user_id for user_id, celebrity in rows if not celebrity]
    return await gather_feed(services.tweets, authors, services.settings.feed_max)


async def rebuild(ctx: RequestContext, viewer: int, view: Followees) -> None:
    feeds = ctx.services.feeds
    metrics = ctx.services.metrics
    started = time.perf_counter()
    await feeds.begin_rebuild(viewer)  # from here on, fan-out pushes land in the new feed
    await feeds.finish_rebuild(viewer, await gather(ctx, viewer, view))
    metrics.feed_rebuilds.observe(time.perf_counter() - started)


async def celebrity_refs(ctx: RequestContext, view: Followees) -> list[FeedRef]:
    """Recent tweets of the celebrities the viewer follows (at most CELEBRITIES_MERGED_PER_READ
    of them), newest first."""
    merged = view.celebrities[: ctx.services.settings.celebrities_merged_per_read]
    if not merged:
        return []
    recent = await ctx.services.celebrities.recent(merged)
    return merge_newest([[FeedRef(t, c) for t in ids] for c, ids in recent.items()])


async def read_feed(ctx: RequestContext, first: int, after: FeedRef | None) -> FeedResult:
    viewer = await ctx.viewer_id()
    want = page_size(ctx, first)
    page = await ctx.services.feeds.page(viewer, 2 * want, after)
    view = await followees(ctx, viewer, page.celebrities, page.following_version)
    source = await feed_source(ctx, viewer, view, page, after)
    celebrity = await celebrity_refs(ctx, view)
    items: list[FeedItem] = []
    hidden: list[FeedRef] = []
    cursor = after
    more = True
    for _ in range(MAX_READ_ROUNDS):
        cached, exhausted = await source.before(cursor, 2 * want)
        # Celebrity refs are merged only down to the oldest cached ref of this round: below it,
        # cached refs not fetched yet may interleave.
        floor = None if exhausted else cached[-1]
        candidates = merge_newest([cached, _between(celebrity, cursor, floor)])
        visible = await visible_items(ctx, viewer, view, candidates)
        unread = len(candidates)
        for ref in candidates:
            if len(items) == want:
                break
            cursor, unread = ref, unread - 1
            if ref in visible:
                items.append(FeedItem(ref, visible[ref]))
            else:
                hidden.append(ref)
        more = unread > 0 or not exhausted
        if len(items) == want or not more:
            break
    if hidden:
        # Reclaim space: they never show (unless a follow since the view was read).
        await ctx.services.feeds.drop_refs(viewer, hidden, view.version)
    return FeedResult(items=items, has_next_page=more, end_cursor=cursor)


def _between(refs: list[FeedRef], cursor: FeedRef | None, floor: FeedRef | None) -> list[FeedRef]:
    """The refs older than `cursor` and no older than `floor` (None: no bound)."""
    return [r for r in refs if (cursor is None or r < cursor) and (floor is None or r >= floor)]


async def visible_items(
    ctx: RequestContext, viewer: int, view: Followees, refs: list[FeedRef]
) -> dict[FeedRef, Tweet]:
    """The refs the viewer may see, with their documents (batched through the loaders)."""
    if not refs:
        return {}
    followed = await view.check(sorted({r.author_id for r in refs if r.author_id != viewer}))
    allowed = [r for r in refs if r.author_id == viewer or r.author_id in followed]
    tweets = await ctx.tweets.load_many([(r.author_id, r.tweet_id) for r in allowed])
    return {
        ref: tweet
        for ref, tweet in zip(allowed, tweets, strict=True)
        if tweet is not None and not tweet.deleted
    }
