"""The home-feed cache: one precomputed feed per active viewer, in the feed Redis.

Keys (this module is their only writer); `{V}` is the viewer id:
  feed:{V}           sorted set, score 0, members of 16 bytes: tweet id then author id, both
                     big-endian, so ZRANGE BYLEX orders them by time (a double score cannot hold
                     a 64-bit id). Capped at FEED_MAX entries, trimmed by rank. Two marker
                     members sort below every entry: COMPLETE (the feed was fully built: a read
                     may trust it) and BUILDING (a rebuild is gathering; pushes still land).
                     The key lives ACTIVE_DAYS; a read refreshes that at most hourly. A feed key
                     exists exactly for active users: fan-out pushes only into existing keys, so
                     it never creates a one-item feed that would pass for a complete one.
                     A retweet's entry is the retweet's own ref (its id, the retweeter's id);
                     the read finds the original in the retweet's document.
  feed_originals:{V} hash, the feed's index: which entry SHOWS each original. The feed keeps
                     every entry (a retweet entry of an original the feed has already is
                     kept, hidden); every writer applies one rule (storage/lua/_feed_index.lua):
                     of the entries of one original (its own entry, retweet entries of it) the
                     earliest shows, as a rebuild decides. When the entry showing an original
                     leaves (undo, delete, unfollow clean-up, a read's clean-up, trim), the
                     next one shows it. Fields: original's member -> its retweet entries in
                     the feed (16 bytes each, earliest first); 'r' + retweet entry -> the
                     original's member; 'v' -> '2' (the index is whole: a feed without it
                     reads as not complete and is rebuilt, so an evicted index never shows
                     hidden entries). Kept exactly with the feed (trimmed with it), same slot
                     and TTL.
Read here, owned elsewhere (never written by this module):
  following_ver:{V}, following_celebs:{V}, followees:{V}   storage/followee_sets.py: `page`
                     reads all three in its one script call (whether V follows each author on
                     the page); the if-unchanged removals compare following_ver.
  presence:{V}, live:{V}                    storage/presence.py: the push scripts publish on
                     V's live channel only while V's presence key exists.
The rebuild lock is storage/rebuild_locks.py.

On a Redis Cluster (FEED_REDIS_CLUSTER) every key of one viewer (feed_originals:{V} included,
so a push or a removal decides which entry shows on the node that holds the feed) shares V's
slot, so each call about one viewer is one command or script on one node. A fan-out batch
spans many viewers: it is grouped by the node that holds each viewer's slot and costs one
script call per node, run on the nodes concurrently (storage/lua/push.lua); on one server it
is one call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio.cluster import RedisCluster
from redis.typing import EncodableT

from settings import Settings
from storage import lua
from storage.followee_sets import followees_key, following_celebs_key, following_version_key
from storage.presence import live_channel, presence_key
from storage.pubsub import publish_command
from storage.redis_clients import (
    FeedRedis,
    group_by_node,
    open_feed_redis,
    refresh_slot_map,
    reply_bytes,
    stale_slot_map,
)

ID_BYTES = 8
COMPLETE = b"\x00" * 16
BUILDING = b"\x00" * 15 + b"\x01"
_MARKERS = (COMPLETE, BUILDING)
INDEX_WHOLE, INDEX_VERSION = (
    b"v",
    b"2",
)  # the field saying a feed's index is whole (_feed_index.lua)
TTL_REFRESH_SECONDS = 3600  # a read extends a feed's life only if it is this much shorter
BATCH_ATTEMPTS = 3  # on a cluster: sends of a batch's part whose node's slots moved meanwhile


def feed_key(viewer_id: int) -> str:
    return f"feed:{{{viewer_id}}}"


def feed_originals_key(viewer_id: int) -> str:
    return f"feed_originals:{{{viewer_id}}}"


@dataclass(frozen=True, order=True)
class FeedRef:
    """One feed entry. Ordered like the feed: by tweet id (time), then author."""

    tweet_id: int
    author_id: int

    def member(self) -> bytes:
        return self.tweet_id.to_bytes(ID_BYTES, "big") + self.author_id.to_bytes(ID_BYTES, "big")

    @classmethod
    def from_member(cls, raw: bytes) -> FeedRef:
        return cls(int.from_bytes(raw[:ID_BYTES], "big"), int.from_bytes(raw[ID_BYTES:], "big"))


@dataclass(frozen=True)
class FeedPage:
    refs: list[FeedRef]
    complete: bool  # False: the feed is missing or still being built; rebuild or wait
    exhausted: bool  # True: no older entries remain in the cache
    ttl_seconds: int
    celebrities: list[int] | None  # the celebrities the viewer follows; None: not cached
    following_version: str  # following_ver, read before the cached followee sets
    followed: frozenset[int] | None = None  # the refs' authors the viewer follows; None: the
    # followee set is not cached (ask the graph)


class FeedCache:
    """Parameters: `feed_max` entries per feed; a feed lives `ttl_seconds` after its last read."""

    def __init__(self, client: FeedRedis, *, feed_max: int, ttl_seconds: int) -> None:
        self.client = client  # public for tests and benchmarks; stores never borrow it
        self.feed_max = feed_max
        self._ttl = ttl_seconds
        self._publish = publish_command(client)
        self._batch_scripts = {name: lua.register(client, name) for name in ("push", "unpush")}
        self._merge = lua.register(client, "merge")
        self._drop_if_unchanged = lua.register(client, "drop_if_unchanged")
        self._unmerge_if_unchanged = lua.register(client, "unmerge_if_unchanged")
        self._page = lua.register(client, "feed_page")
        self._shows = lua.register(client, "feed_shows")
        self._begin_rebuild = lua.register(client, "begin_rebuild")

    # -- reading -------------------------------------------------------------------------------

    async def page(self, viewer_id: int, count: int, before: FeedRef | None) -> FeedPage:
        """Up to `count` refs older than `before`, newest first, with the feed's state, the
        viewer's cached celebrity followees and which of the refs' authors the viewer follows:
        one script call. Only the entries that show are returned (a retweet entry hidden behind
        an earlier entry of its original is passed over)."""
        start = b"+" if before is None else b"(" + before.member()
        keys = [
            feed_key(viewer_id),
            following_version_key(viewer_id),
            following_celebs_key(viewer_id),
            followees_key(viewer_id),
            feed_originals_key(viewer_id),
        ]
        reply = await self._page(keys=keys, args=[start, count])
        version, complete, ttl, celebs_cached, celebs, followees_cached, members, flags = reply
        flags = flags or [0] * len(members)  # empty when the followee set is not cached
        entries = [(m, f) for m, f in zip(members, flags, strict=True) if m not in _MARKERS]
        refs = [FeedRef.from_member(m) for m, _ in entries]
        followed = frozenset(r.author_id for r, (_, f) in zip(refs, entries, strict=True) if f)
        return FeedPage(
            refs=refs,
            complete=bool(complete),
            exhausted=len(members) < count or len(refs) < len(members),
            ttl_seconds=int(ttl),
            celebrities=sorted(int(c) for c in celebs if int(c)) if celebs_cached else None,
            following_version=reply_bytes(version).decode(),
            followed=followed if followees_cached else None,
        )

    async def shows_originals(
        self, viewer_id: int, entries: list[tuple[FeedRef, FeedRef]]
    ) -> list[bool]:
        """For (original, entry) pairs: whether the viewer's cached feed shows that original
        at another entry (its own, or the retweet entry of it that shows it). One script call;
        a missing feed shows nothing."""
        if not entries:
            return []
        args: list[EncodableT] = []
        for original, entry in entries:
            args += [original.member(), entry.member()]
        keys = [feed_key(viewer_id), feed_originals_key(viewer_id)]
        return [bool(flag) for flag in await self._shows(keys=keys, args=args)]

    async def keep_alive(self, viewer_id: int, ttl_seconds: int) -> None:
        """Extend the feed's life (and its index's) if a read finds it more than an hour into
        its TTL."""
        if 0 < ttl_seconds < self._ttl - TTL_REFRESH_SECONDS:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.expire(feed_key(viewer_id), self._ttl)
                pipe.expire(feed_originals_key(viewer_id), self._ttl)
                await pipe.execute()

    async def members(self, viewer_id: int) -> list[FeedRef]:
        """Every entry, newest first, shown or hidden (for reconciliation and tests)."""
        raw = await self.client.zrange(feed_key(viewer_id), b"+", b"-", desc=True, bylex=True)
        return [FeedRef.from_member(reply_bytes(m)) for m in raw if m not in _MARKERS]

    # -- fan-out -------------------------------------------------------------------------------

    async def push_to_feeds(
        self, ref: FeedRef, viewer_ids: list[int], event: str, original: FeedRef | None = None
    ) -> int:
        """Add `ref` to the existing feeds among `viewer_ids`; publish `event` to the online ones
        that gained it. Idempotent. Returns how many feeds gained it (on a cluster, a part of
        the batch sent again after its node's slots moved counts only what the second call
        added). A retweet (`original`: what it retweets) is kept in every feed, and shows
        (goes live) only where no earlier entry of that original is. Where `ref` hides the
        entry that showed its original until now, online viewers get that entry's deletion
        first (as a removal that lets the next entry show sends it)."""
        return await self._run_batch("push", ref, viewer_ids, event, original)

    async def unpush_from_feeds(
        self, ref: FeedRef, viewer_ids: list[int], event: str, original: FeedRef | None = None
    ) -> int:
        """Remove `ref` from those feeds; publish `event` to online viewers that had it. Where
        `ref` showed an original, the next entry of it shows it (and goes live)."""
        return await self._run_batch("unpush", ref, viewer_ids, event, original)

    async def _run_batch(
        self,
        script: str,
        ref: FeedRef,
        viewer_ids: list[int],
        event: str,
        original: FeedRef | None,
    ) -> int:
        if not viewer_ids:
            return 0
        head: list[EncodableT] = [
            COMPLETE,
            BUILDING,
            self.feed_max,
            ref.member(),
            event,
            self._publish,
            b"" if original is None else original.member(),
        ]
        if not isinstance(self.client, RedisCluster):
            keys, args = _batch_layout(head, viewer_ids)
            return int(await self._batch_scripts[script](keys=keys, args=args))
        return await self._run_batch_per_node(self.client, script, head, viewer_ids)

    async def _run_batch_per_node(
        self, cluster: RedisCluster, script: str, head: list[EncodableT], viewer_ids: list[int]
    ) -> int:
        """One script call per node holding some of the viewers' slots, concurrently. A part
        whose node no longer holds its slots (failover, migration) is regrouped by a fresh slot
        map and sent again (the scripts are idempotent), up to BATCH_ATTEMPTS times."""
        total, pending = 0, viewer_ids
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            groups = [
                (node, [pending[i] for i in positions])
                for node, positions in await group_by_node(cluster, [feed_key(v) for v in pending])
            ]
            outcomes = await asyncio.gather(
                *(
                    lua.run_on_node(cluster, node, script, *_batch_layout(head, viewers))
                    for node, viewers in groups
                ),
                return_exceptions=True,
            )
            pending = []
            for (_, viewers), outcome in zip(groups, outcomes, strict=True):
                if not isinstance(outcome, BaseException):
                    total += int(outcome)
                elif attempt < BATCH_ATTEMPTS and stale_slot_map(outcome):
                    pending += viewers
                else:
                    raise outcome
            if not pending:
                break
            await refresh_slot_map(cluster)
        return total

    async def merge_into_feed(
        self,
        viewer_id: int,
        refs: list[FeedRef],
        originals: dict[FeedRef, FeedRef] | None = None,
    ) -> bool:
        """Add refs to the viewer's feed if it exists (a follow). `originals` maps the retweet
        entries among `refs` to the originals they show: every entry is kept, and of the entries
        of one original the earliest shows, as for a push. False if there is no feed."""
        return await self._merge_refs(viewer_id, refs, finish=False, originals=originals)

    async def drop_refs(
        self, viewer_id: int, refs: list[FeedRef], following_version: str
    ) -> list[FeedRef]:
        """Remove entries a read found invisible (deleted, or by someone no longer followed),
        only if no follow or unfollow happened since `following_version` was read (before the
        follow state the read judged by): a re-follow may have merged them back meanwhile.
        Returns the entries that show an original from now on because one of those showed it
        (the read passed over them while they were hidden)."""
        keys = [
            feed_key(viewer_id),
            following_version_key(viewer_id),
            feed_originals_key(viewer_id),
        ]
        args: list[EncodableT] = [following_version, *(r.member() for r in refs)]
        promoted = await self._drop_if_unchanged(keys=keys, args=args)
        if isinstance(promoted, int):
            return []  # the follow state moved: nothing removed
        return [FeedRef.from_member(reply_bytes(m)) for m in promoted]

    async def unmerge_from_feed(
        self, viewer_id: int, author_id: int, following_version: str
    ) -> int | None:
        """Remove every entry by `author_id` (an unfollow's clean-up), unless the viewer's follow
        state changed since `following_version` was read. How many were removed; None if the
        state changed (nothing removed: decide again)."""
        author = author_id.to_bytes(ID_BYTES, "big")
        removed = await self._if_unchanged(
            self._unmerge_if_unchanged, viewer_id, following_version, [author]
        )
        return None if removed < 0 else removed

    async def _if_unchanged(
        self, script, viewer_id: int, following_version: str, args: list[bytes]
    ) -> int:
        keys = [
            feed_key(viewer_id),
            following_version_key(viewer_id),
            feed_originals_key(viewer_id),
        ]
        return int(await script(keys=keys, args=[following_version, *args]))

    # -- rebuilding ----------------------------------------------------------------------------

    async def begin_rebuild(self, viewer_id: int) -> None:
        """Make the key exist (BUILDING), so pushes made while we gather are not lost, with a
        whole index (both start afresh if either was missing). The caller holds the viewer's
        rebuild lock (storage/rebuild_locks.py)."""
        keys = [feed_key(viewer_id), feed_originals_key(viewer_id)]
        await self._begin_rebuild(keys=keys, args=[BUILDING, self._ttl])

    async def finish_rebuild(
        self,
        viewer_id: int,
        refs: list[FeedRef],
        originals: dict[FeedRef, FeedRef] | None = None,
    ) -> None:
        """Add the gathered refs, trim, and mark the feed COMPLETE. `originals` maps the
        retweet entries among `refs` to the originals they show (for the feed index)."""
        await self._merge_refs(viewer_id, refs, finish=True, originals=originals)

    async def _merge_refs(
        self,
        viewer_id: int,
        refs: list[FeedRef],
        *,
        finish: bool,
        originals: dict[FeedRef, FeedRef] | None = None,
    ) -> bool:
        args: list[EncodableT] = [
            COMPLETE,
            BUILDING,
            self.feed_max,
            self._ttl,
            "1" if finish else "0",
            len(refs),
        ]
        args += [r.member() for r in refs]
        for entry, original in (originals or {}).items():
            args += [original.member(), entry.member()]
        keys = [feed_key(viewer_id), feed_originals_key(viewer_id)]
        return bool(await self._merge(keys=keys, args=args))

    async def create_empty(self, viewer_ids: list[int]) -> None:
        """Give each viewer a complete, empty feed (and index), pipelined (seeding: makes them
        active)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for viewer_id in viewer_ids:
                pipe.zadd(feed_key(viewer_id), {COMPLETE: 0})
                pipe.hset(feed_originals_key(viewer_id), INDEX_WHOLE, INDEX_VERSION)
                pipe.expire(feed_key(viewer_id), self._ttl)
                pipe.expire(feed_originals_key(viewer_id), self._ttl)
            await pipe.execute()


def _batch_layout(
    head: list[EncodableT], viewer_ids: list[int]
) -> tuple[list[str], list[EncodableT]]:
    """KEYS and ARGV of push.lua / unpush.lua for these viewers, after the `head` arguments."""
    feeds = [feed_key(v) for v in viewer_ids]
    args = [*head, len(viewer_ids), *feeds]
    args += [presence_key(v) for v in viewer_ids]
    args += [live_channel(v) for v in viewer_ids]
    args += [feed_originals_key(v) for v in viewer_ids]
    return feeds[:1], args


def open_feed_cache(settings: Settings) -> FeedCache:
    """A FeedCache on a new feed-role client (`feeds.client`; the caller closes it)."""
    return FeedCache(
        open_feed_redis(settings),
        feed_max=settings.feed_max,
        ttl_seconds=settings.active_days * 86400,
    )
