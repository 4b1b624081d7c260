"""The home feed: the viewer's own tweets and those of everyone they follow, newest first.

A read takes refs from the viewer's precomputed feed (or, on a miss, rebuilds it from the tweet
shards), merges in the recent tweets of the celebrities they follow, and keeps only what the viewer
may see now (`social.visibility`). It over-fetches until the page is full, so background clean-up
being behind never shows. Live updates pass the same rules.

A retweet entry shows its original: a page holding retweets costs one more document round trip
(the originals, with their authors), a page holding replies may cost one follow lookup (does
the viewer follow the authors replied to; often known from the page already); a page of plain
tweets costs what it did. A rebuild reads the gathered tweets' documents (one round trip per
shard) to apply the reply rule and keep each original once before it writes the feed.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from graph.port import SocialGraph
from ops.metrics import Metrics
from social import visibility
from social.paging import page_size
from storage.celebrity_timelines import CelebrityTimelines
from storage.feed_builder import gather_feed, merge_newest
from storage.feeds import FeedCache, FeedPage, FeedRef
from storage.followee_sets import FolloweeSets
from storage.rebuild_locks import RebuildLocks
from storage.tweet_cache import TweetRef
from storage.tweets import Tweet, TweetStore

REBUILD_WAIT_SECONDS = 2.0  # how long a read waits for another process's rebuild
REBUILD_POLL_SECONDS = 0.02
MAX_READ_ROUNDS = 10  # over-fetch rounds before a (short) page is returned anyway
MAX_REREADS = 2  # reads of a page again because its clean-up let a passed-over entry show
CELEBRITY_RECENT = 50  # newest tweets kept per celebrity for merging

LoadTweets = Callable[[list[TweetRef]], Awaitable[list[Tweet | None]]]
"""Documents by (author, id), tombstones included, in order (the request's batched loader)."""
Verify = Callable[[], Awaitable[object]]
"""Confirms that the caller's token still holds (raises if not); cheap once a load confirmed it."""


@dataclass(frozen=True)
class FeedItem:
    ref: FeedRef  # the feed entry (for a retweet: the retweet's id and the retweeter)
    tweet: Tweet  # what it shows (for a retweet: the original)
    retweeted_by: int | None = None


@dataclass(frozen=True)
class FeedResult:
    items: list[FeedItem]
    has_next_page: bool
    end_cursor: FeedRef | None


class DeliveredOriginals:
    """The originals one live subscription delivered, newest `limit` remembered (least recently
    delivered out): an original goes out live once, however it reaches the subscription (a
    celebrity's tweet from this process, then a followee's retweet of it pushed to the feed
    before this process's celebrity cache holds it). A deletion forgets it, so a retweet that
    shows it again later does."""

    def __init__(self, limit: int = 1000) -> None:
        self._limit = limit
        self._seen: dict[tuple[int, int], None] = {}

    def first(self, item: FeedItem) -> bool:
        """Whether `item`'s original was not delivered yet (it is remembered now)."""
        key = (item.tweet.author_id, item.tweet.tweet_id)
        new = key not in self._seen
        self._seen.pop(key, None)
        self._seen[key] = None
        if len(self._seen) > self._limit:
            del self._seen[next(iter(self._seen))]
        return new

    def forget(self, original: tuple[int, int]) -> None:
        self._seen.pop(original, None)


class Followees:
    """Whom the viewer follows, as far as this read needs to know: learnt from the feed pages
    it reads (the page script says, per ref, whether the viewer follows its author) and from
    the cached celebrity set, else asked of the followee-set cache or the graph. `version` is
    the viewer's follow-state version read before any of it: removals judged from this view
    are made only if it still holds. `rows` are the graph's (id, celebrity) pairs when this
    read had to ask the graph."""

    def __init__(
        self,
        celebrities: list[int],
        ask: Callable[[list[int]], Awaitable[set[int]]],
        version: str,
        rows: list[tuple[int, bool]] | None = None,
    ) -> None:
        self.celebrities = celebrities
        self.version = version
        self.rows = rows
        self._ask = ask
        self._known: set[int] = set(celebrities)
        self._followed: set[int] = set(celebrities)

    def learn(self, page: FeedPage) -> None:
        """Take what a page says about its authors (nothing if its followee set was gone)."""
        if page.followed is not None:
            self._known.update(ref.author_id for ref in page.refs)
            self._followed.update(page.followed)

    async def check(self, authors: list[int]) -> set[int]:
        """The subset of `authors` the viewer follows; asks only about those not learnt."""
        unknown = [a for a in authors if a not in self._known]
        if unknown:
            self._followed |= await self._ask(unknown)
            self._known.update(unknown)
        return {a for a in authors if a in self._followed}


class RefSource:
    """Feed refs older than a cursor: from the feed cache (its first page possibly read
    already), or from a list built for this read while another process rebuilds the cache."""

    def __init__(
        self,
        feeds: FeedCache,
        viewer: int,
        view: Followees,
        built: list[FeedRef] | None,
        first: tuple[FeedRef | None, FeedPage] | None = None,
    ) -> None:
        self._feeds = feeds
        self._viewer = viewer
        self._view = view
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
        page = await self._feeds.page(self._viewer, count, cursor)
        self._view.learn(page)
        return page.refs, page.exhausted


class HomeFeed:
    """Reads of the viewer's home feed, and the filter its live updates pass.

    Parameters: `feed_max` refs a rebuilt feed holds; at most `celebrities_per_read` followed
    celebrities are merged into one read; pages hold 1..`max_page_size` tweets."""

    def __init__(
        self,
        *,
        feeds: FeedCache,
        followee_sets: FolloweeSets,
        locks: RebuildLocks,
        graph: SocialGraph,
        tweets: TweetStore,
        celebrities: CelebrityTimelines,
        metrics: Metrics,
        feed_max: int,
        celebrities_per_read: int,
        max_page_size: int,
    ) -> None:
        self._feeds = feeds
        self._followee_sets = followee_sets
        self._locks = locks
        self._graph = graph
        self._tweets = tweets
        self._celebrities = celebrities
        self._metrics = metrics
        self._feed_max = feed_max
        self._celebrities_per_read = celebrities_per_read
        self.max_page_size = max_page_size

    async def read(
        self, viewer: int, first: int, after: FeedRef | None, load: LoadTweets, verify: Verify
    ) -> FeedResult:
        """A page of up to `first` tweets older than `after`, newest first.

        `verify` confirms the caller's token; it is awaited before anything is written on the
        viewer's behalf (a rebuild, clean-up) and before the page is returned. `load` may
        confirm it in passing (the documents' round trip), so that a cache hit costs two round
        trips: the feed page, then the documents.

        A page whose clean-up removed the entry showing an original lets the next entry of it
        show (the feed's index); if that entry lies within what this page walked (it was
        hidden then), the page is read again, so that the original shows on it (at most
        MAX_REREADS times; then the next read shows it)."""
        for _ in range(MAX_REREADS):
            result, promoted = await self._read_once(viewer, first, after, load, verify)
            if not any(after is None or ref < after for ref in promoted):
                return result
        return (await self._read_once(viewer, first, after, load, verify))[0]

    async def _read_once(
        self, viewer: int, first: int, after: FeedRef | None, load: LoadTweets, verify: Verify
    ) -> tuple[FeedResult, list[FeedRef]]:
        """One read of the page, and the entries its clean-up made show."""
        want = page_size(first, self.max_page_size)
        page = await self._feeds.page(viewer, 2 * want, after)
        if not page.complete or page.celebrities is None:
            await verify()  # a rebuild or the followee-set cache is about to be written
        view = await self.followees(viewer, page.celebrities, page.following_version)
        view.learn(page)
        source = await self._source(viewer, view, page, after)
        celebrity = await self._celebrity_refs(view.celebrities)
        fill = visibility.PageFill(want=want, cursor=after, shown=[], hidden=[])
        more = True
        for _ in range(MAX_READ_ROUNDS):
            cached, exhausted = await source.before(fill.cursor, 2 * want)
            # Celebrity refs are merged only down to the oldest cached ref of this round: below
            # it, cached refs not fetched yet may interleave.
            floor = None if exhausted else cached[-1]
            merged = visibility.between(celebrity, fill.cursor, floor)
            candidates = merge_newest([cached, merged])
            passed: set[FeedRef] = set()
            shown = await self.visible(viewer, view, candidates, load, merged, celebrity, passed)
            unread = fill.take(candidates, shown, passed)
            more = unread > 0 or not exhausted
            if fill.full or not more:
                break
        await verify()
        if page.complete:
            await self._feeds.keep_alive(viewer, page.ttl_seconds)
        promoted: list[FeedRef] = []
        if fill.hidden:
            # Reclaim space: they never show (unless a follow since the view was read).
            promoted = await self._feeds.drop_refs(viewer, fill.hidden, view.version)
        items = [FeedItem(ref, entry.tweet, entry.retweeted_by) for ref, entry in fill.shown]
        return FeedResult(items=items, has_next_page=more, end_cursor=fill.cursor), promoted

    async def open_live(self, viewer: int) -> list[int]:
        """Make sure the viewer has a feed (fan-out publishes live events only where feeds
        are) and return the celebrities they follow, whose tweets reach them from this process.
        The viewer must be authenticated: this may rebuild the feed."""
        page = await self._feeds.page(viewer, 1, None)
        view = await self.followees(viewer, page.celebrities)
        await self._source(viewer, view, page, None)
        return view.celebrities

    async def replay(
        self, viewer: int, after: FeedRef, load: LoadTweets, verify: Verify
    ) -> list[FeedItem]:
        """Feed items newer than `after`, oldest first (at most one page: MAX_PAGE_SIZE)."""
        page = await self.read(viewer, self.max_page_size, None, load, verify)
        return [item for item in reversed(page.items) if item.ref > after]

    async def live_item(
        self, viewer: int, ref: FeedRef, load: LoadTweets, celebrities: Collection[int] = ()
    ) -> FeedItem | None:
        """The new entry `ref` as the viewer's feed would show it now, or None if hidden. The
        viewer must be authenticated (a miss fills nothing: one cheap lookup per event).
        `celebrities`: those the viewer follows (their tweets reach the subscription from this
        process): a retweet of one of their recent tweets is hidden, as a read hides it."""
        view = Followees([], functools.partial(self._ask_follows, viewer), version="")
        # A pushed retweet is in the feed only if the feed showed its original nowhere else,
        # and a celebrity's is not in it: both are checked as a merged one.
        recent = await self._celebrity_refs(list(celebrities))
        entry = (await self.visible(viewer, view, [ref], load, [ref], recent)).get(ref)
        return None if entry is None else FeedItem(ref, entry.tweet, entry.retweeted_by)

    async def _ask_follows(self, viewer: int, authors: list[int]) -> set[int]:
        """Which of `authors` the viewer follows: the followee-set cache, else the graph."""
        if not authors:
            return set()
        flags = await self._followee_sets.follows(viewer, authors)
        if flags is None:  # not cached (or evicted meanwhile): ask the graph
            return await self._graph.following_among(viewer, authors)
        return {a for a, followed in zip(authors, flags, strict=True) if followed}

    async def followees(
        self, viewer: int, cached_celebrities: list[int] | None, version: str | None = None
    ) -> Followees:
        """`cached_celebrities` and `version` come with a feed page (FeedPage.celebrities and
        .following_version): if the followee set is cached, this costs no round trip;
        otherwise the graph is asked and the cache filled."""
        sets = self._followee_sets
        if version is None:
            version = await sets.following_version(viewer)
        if cached_celebrities is not None:
            return Followees(
                cached_celebrities, functools.partial(self._ask_follows, viewer), version
            )
        rows = await self._graph.followee_ids(viewer)
        followed = {user_id for user_id, _ in rows}
        celebrities = sorted(user_id for user_id, celebrity in rows if celebrity)
        await sets.fill_following(viewer, sorted(followed), celebrities, version)

        async def ask_local(authors: list[int]) -> set[int]:
            return followed.intersection(authors)

        return Followees(celebrities, ask_local, version, rows)

    async def visible(
        self,
        viewer: int,
        view: Followees,
        refs: list[FeedRef],
        load: LoadTweets,
        merged: Collection[FeedRef] = (),
        celebrity: Collection[FeedRef] = (),
        passed: set[FeedRef] | None = None,
    ) -> dict[FeedRef, visibility.Shown]:
        """The refs the viewer may see, with what they show: fetch (the documents; the
        originals of retweets; whether the viewer follows the authors replies answer), then
        decide. A retweet among `merged` (refs not from the cached feed: celebrities') is
        left out if the cached feed shows its original elsewhere (one more call, only then).
        A retweet of a tweet among `celebrity` (every celebrity ref this read merges, on any
        page) is left out too, and added to `passed` (not dropped from the cache): the original
        shows at its own, earlier, entry, so each original shows once whatever the page size
        (`visibility.shown_by_celebrity`); so is a later entry of an original another of the
        refs shows (`visibility.decide`)."""
        if not refs:
            return {}
        followed = await view.check(visibility.authors_to_check(viewer, refs))
        allowed = visibility.allowed_refs(viewer, refs, followed)
        documents = await load([(r.author_id, r.tweet_id) for r in allowed])
        wanted = visibility.originals_of(documents)
        originals = dict(zip(wanted, await load(wanted), strict=True)) if wanted else {}
        parents = await view.check(visibility.parent_authors(viewer, documents))
        superseded: set[FeedRef] = set()
        found = visibility.decide(viewer, allowed, documents, originals, parents, superseded)
        if passed is not None:
            passed |= superseded
        for ref in visibility.shown_by_celebrity(found, celebrity):
            del found[ref]
            if passed is not None:
                passed.add(ref)
        outside = set(merged)
        retweets = [r for r, e in found.items() if e.retweeted_by is not None and r in outside]
        pairs = [(visibility.feed_ref(found[ref].original), ref) for ref in retweets]
        held = await self._feeds.shows_originals(viewer, pairs)
        for ref, shown_elsewhere in zip(retweets, held, strict=True):
            if shown_elsewhere:
                del found[ref]
        return found

    async def _source(
        self, viewer: int, view: Followees, page: FeedPage, cursor: FeedRef | None
    ) -> RefSource:
        """The viewer's cached feed, given its first `page` (read from `cursor`); rebuilt first
        if it is missing (one process rebuilds; the others wait briefly, then build the same
        refs for themselves without writing them)."""
        feeds = self._feeds
        if page.complete:
            return RefSource(feeds, viewer, view, None, first=(cursor, page))
        self._metrics.feed_misses.inc()
        token = secrets.token_hex(8)
        if await self._locks.try_lock(viewer, token):
            try:
                # Another process may have finished a rebuild between our read and our lock.
                if not (await feeds.page(viewer, 1, None)).complete:
                    await self._rebuild(viewer, view)
            finally:
                await self._locks.unlock(viewer, token)
            return RefSource(feeds, viewer, view, None)
        deadline = time.monotonic() + REBUILD_WAIT_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(REBUILD_POLL_SECONDS)
            if (await feeds.page(viewer, 1, None)).complete:
                return RefSource(feeds, viewer, view, None)
        return RefSource(feeds, viewer, view, (await self._gather(viewer, view)).shown)

    async def _gather(self, viewer: int, view: Followees) -> visibility.RebuiltFeed:
        """The feed as pulled from the tweet shards: the viewer and non-celebrity followees,
        by the feed's rules (replies; every entry kept, the earliest of each original
        showing), and the originals its retweet entries show."""
        rows = view.rows if view.rows is not None else await self._graph.followee_ids(viewer)
        authors = [viewer] + [user_id for user_id, celebrity in rows if not celebrity]
        refs = await gather_feed(self._tweets, authors, self._feed_max)
        documents = await self._tweets.get_many([(r.author_id, r.tweet_id) for r in refs])
        followed = {user_id for user_id, _ in rows}
        return visibility.rebuilt_feed(viewer, refs, documents, followed)

    async def _rebuild(self, viewer: int, view: Followees) -> None:
        started = time.perf_counter()
        await self._feeds.begin_rebuild(viewer)  # from here on, fan-out pushes land in the new feed
        built = await self._gather(viewer, view)
        await self._feeds.finish_rebuild(viewer, built.entries, built.originals)
        self._metrics.feed_rebuilds.observe(time.perf_counter() - started)

    async def _celebrity_refs(self, celebrities: list[int]) -> list[FeedRef]:
        """Recent tweets of the celebrities the viewer follows (at most `celebrities_per_read`
        of them), newest first."""
        merged = celebrities[: self._celebrities_per_read]
        if not merged:
            return []
        recent = await self._celebrities.recent(merged)
        return merge_newest([[FeedRef(t, c) for t in ids] for c, ids in recent.items()])
