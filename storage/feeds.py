"""The home-feed cache: precomputed feeds, followee sets and presence, in the feed Redis.

Keys (this module is their only writer); `{V}` is the viewer id:
  feed:{V}           sorted set, score 0, members of 16 bytes: tweet id then author id, both
                     big-endian, so ZRANGE BYLEX orders them by time (a double score cannot hold
                     a 64-bit id). Capped at FEED_MAX entries, trimmed by rank. Two marker
                     members sort below every entry: COMPLETE (the feed was fully built: a read
                     may trust it) and BUILDING (a rebuild is gathering; pushes still land).
                     The key lives ACTIVE_DAYS; a read refreshes that at most hourly. A feed key
                     exists exactly for active users: fan-out pushes only into existing keys, so
                     it never creates a one-item feed that would pass for a complete one.
  following:{V}      set of the ids V follows (plus 0, so an empty set still exists), for
                     filtering at read time. Dropped on every follow/unfollow of V.
  following_celebs:{V}  the celebrities among them (plus 0), merged into V's pages at read
                     time. Written and dropped together with following:{V}.
  following_ver:{V}  counter bumped by every follow/unfollow of V, before a follow merges
                     entries in: a rebuild of following:{V} from the graph is written, and
                     entries judged unfollowed are removed, only if no follow happened since
                     the decision's inputs were read.
  presence:{V}       exists while V has a live subscription (heartbeat TTL); fan-out publishes
                     live events only for these viewers, on channel live:<V>.
  lock:feed:{V}      held by the one process rebuilding V's feed.
  live_slots:{V}     sorted set: V's WebSocket connections on every API process, scored by
                     when their heartbeat lapses; bounds how many one user may hold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from settings import Settings

ID_BYTES = 8
COMPLETE = b"\x00" * 16
BUILDING = b"\x00" * 15 + b"\x01"
_MARKERS = (COMPLETE, BUILDING)
FOLLOWING_TTL_SECONDS = 3600
TTL_REFRESH_SECONDS = 3600  # a read extends a feed's life only if it is this much shorter
REBUILD_LOCK_MS = 10_000


def feed_key(viewer_id: int) -> str:
    return f"feed:{{{viewer_id}}}"


def following_key(viewer_id: int) -> str:
    return f"following:{{{viewer_id}}}"


def following_celebs_key(viewer_id: int) -> str:
    return f"following_celebs:{{{viewer_id}}}"


def following_version_key(viewer_id: int) -> str:
    return f"following_ver:{{{viewer_id}}}"


def presence_key(viewer_id: int) -> str:
    return f"presence:{{{viewer_id}}}"


def live_slots_key(viewer_id: int) -> str:
    return f"live_slots:{{{viewer_id}}}"


def lock_key(viewer_id: int) -> str:
    return f"lock:feed:{{{viewer_id}}}"


def live_channel(viewer_id: int) -> str:
    return f"live:{viewer_id}"


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


# Shared Lua: how many marker members `key` holds, and trimming to the cap above them.
_TRIM = """
local function trim(key, cap)
  local markers = 0
  if redis.call('ZSCORE', key, ARGV[1]) then markers = markers + 1 end
  if redis.call('ZSCORE', key, ARGV[2]) then markers = markers + 1 end
  local excess = redis.call('ZCARD', key) - markers - cap
  if excess > 0 then redis.call('ZREMRANGEBYRANK', key, markers, markers + excess - 1) end
end
"""

# KEYS: feed keys, then as many presence keys.  ARGV: COMPLETE, BUILDING, cap, member, event,
# then the viewer ids.  Pushes into feeds that exist; publishes the event to online viewers whose
# feed did not hold the member yet (so a retried batch sends no duplicate). Returns how many feeds
# gained the member.
_PUSH = (
    _TRIM
    + """
local n = #KEYS / 2
local added = 0
for i = 1, n do
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 1 and redis.call('ZADD', key, 0, ARGV[4]) == 1 then
    added = added + 1
    trim(key, tonumber(ARGV[3]))
    if redis.call('EXISTS', KEYS[n + i]) == 1 then
      redis.call('PUBLISH', 'live:' .. ARGV[5 + i], ARGV[5])
    end
  end
end
return added
"""
)

# Same layout as _PUSH; removes the member and tells online viewers that had it.
_UNPUSH = """
local n = #KEYS / 2
local removed = 0
for i = 1, n do
  if redis.call('ZREM', KEYS[i], ARGV[4]) == 1 then
    removed = removed + 1
    if redis.call('EXISTS', KEYS[n + i]) == 1 then
      redis.call('PUBLISH', 'live:' .. ARGV[5 + i], ARGV[5])
    end
  end
end
return removed
"""

# KEYS: feed.  ARGV: COMPLETE, BUILDING, cap, ttl, finish ("1": mark complete), members...
# Adds members to an existing feed (follow) or to one being built (rebuild), trims, and with
# `finish` marks the feed complete. Returns 0 (and does nothing) if the key is gone.
_MERGE = (
    _TRIM
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 6, #ARGV do redis.call('ZADD', KEYS[1], 0, ARGV[i]) end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[2])
end
trim(KEYS[1], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
)

# KEYS: following set, celebrity subset, version key.
# ARGV: version read before the graph query, ttl, number of ids, ids..., celebrity ids...
# (At most MAX_FOLLOWING ids: well within Lua's unpack limit.)
_FILL_FOLLOWING = """
local current = redis.call('GET', KEYS[3]) or '0'
if current ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[3])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SADD', KEYS[1], 0, unpack(ARGV, 4, 3 + n))
redis.call('SADD', KEYS[2], 0, unpack(ARGV, 4 + n))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""


# Removals decided from the viewer's follow state, done only if that state has not changed since:
# a follow bumps following_ver before it merges entries in, so a removal judged before a re-follow
# can never take the entries that re-follow merged. KEYS: feed, following_ver.  ARGV: the version
# read before the decision, then the script's own arguments. Returns -1 (and removes nothing) if
# the version moved.
_IF_UNCHANGED = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return -1 end
"""

# ARGV[2...]: members to remove. Returns how many were removed.
_DROP_IF_UNCHANGED = _IF_UNCHANGED + "return redis.call('ZREM', KEYS[1], unpack(ARGV, 2))"

# ARGV[2]: an author id as 8 big-endian bytes. Removes every entry by that author (the markers
# have tweet id 0: they stay). Returns how many were removed.
_UNMERGE_IF_UNCHANGED = (
    _IF_UNCHANGED
    + """
local removed = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 9) == ARGV[2] and string.sub(member, 1, 8) ~= string.rep('\\0', 8) then
    removed = removed + redis.call('ZREM', KEYS[1], member)
  end
end
return removed
"""
)

# KEYS: slots.  ARGV: now (ms), lapse (ms), max, slot id.  1 if the slot was taken, else 0.
_CLAIM_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class FeedCache:
    """Parameters: `feed_max` entries per feed; a feed lives `ttl_seconds` after its last read."""

    def __init__(self, client: aioredis.Redis, *, feed_max: int, ttl_seconds: int) -> None:
        self.client = client  # also carries the live channels and the fan-out stats
        self._redis = client
        self.feed_max = feed_max
        self._ttl = ttl_seconds
        self._push = client.register_script(_PUSH)
        self._unpush = client.register_script(_UNPUSH)
        self._merge = client.register_script(_MERGE)
        self._fill_following = client.register_script(_FILL_FOLLOWING)
        self._claim_slot = client.register_script(_CLAIM_SLOT)
        self._drop_if_unchanged = client.register_script(_DROP_IF_UNCHANGED)
        self._unmerge_if_unchanged = client.register_script(_UNMERGE_IF_UNCHANGED)

    # -- reading -------------------------------------------------------------------------------

    async def page(self, viewer_id: int, count: int, before: FeedRef | None) -> FeedPage:
        """Up to `count` refs older than `before`, newest first, with the feed's state and the
        viewer's cached celebrity followees: one round trip."""
        start = b"+" if before is None else b"(" + before.member()
        key = feed_key(viewer_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(following_version_key(viewer_id))
            pipe.zrange(key, start, b"-", desc=True, bylex=True, offset=0, num=count)
            pipe.zscore(key, COMPLETE)
            pipe.ttl(key)
            pipe.exists(following_celebs_key(viewer_id))
            pipe.smembers(following_celebs_key(viewer_id))
            version, members, complete, ttl, celebs_cached, celebs = await pipe.execute()
        refs = [FeedRef.from_member(m) for m in members if m not in _MARKERS]
        return FeedPage(
            refs=refs,
            complete=complete is not None,
            exhausted=len(members) < count or len(refs) < len(members),
            ttl_seconds=ttl,
            celebrities=sorted(int(c) for c in celebs if int(c)) if celebs_cached else None,
            following_version=(version or b"0").decode(),
        )

    async def keep_alive(self, viewer_id: int, ttl_seconds: int) -> None:
        """Extend the feed's life if a read finds it more than an hour into its TTL."""
        if 0 < ttl_seconds < self._ttl - TTL_REFRESH_SECONDS:
            await self._redis.expire(feed_key(viewer_id), self._ttl)

    async def members(self, viewer_id: int) -> list[FeedRef]:
        """Every entry, newest first (for reconciliation and tests)."""
        raw = await self._redis.zrange(feed_key(viewer_id), b"+", b"-", desc=True, bylex=True)
        return [FeedRef.from_member(m) for m in raw if m not in _MARKERS]

    # -- fan-out -------------------------------------------------------------------------------

    async def push_to_feeds(self, ref: FeedRef, viewer_ids: list[int], event: str) -> int:
        """Add `ref` to the existing feeds among `viewer_ids`; publish `event` to the online ones
        that gained it. Idempotent. Returns how many feeds gained it."""
        return await self._run_batch(self._push, ref, viewer_ids, event)

    async def unpush_from_feeds(self, ref: FeedRef, viewer_ids: list[int], event: str) -> int:
        """Remove `ref` from those feeds; publish `event` to online viewers that had it."""
        return await self._run_batch(self._unpush, ref, viewer_ids, event)

    async def _run_batch(self, script, ref: FeedRef, viewer_ids: list[int], event: str) -> int:
        if not viewer_ids:
            return 0
        keys = [feed_key(v) for v in viewer_ids] + [presence_key(v) for v in viewer_ids]
        args = [COMPLETE, BUILDING, self.feed_max, ref.member(), event, *viewer_ids]
        return int(await script(keys=keys, args=args))

    async def merge_into_feed(self, viewer_id: int, refs: list[FeedRef]) -> bool:
        """Add refs to the viewer's feed if it exists (a follow). False if there is no feed."""
        return await self._merge_refs(viewer_id, refs, finish=False)

    async def drop_refs(
        self, viewer_id: int, refs: list[FeedRef], following_version: str | None = None
    ) -> None:
        """Remove entries a read found invisible (deleted, or by someone no longer followed).
        With `following_version` (read before the follow state the read judged by), only if no
        follow or unfollow happened since: a re-follow may have merged them back meanwhile."""
        members = [r.member() for r in refs]
        if following_version is None:
            await self._redis.zrem(feed_key(viewer_id), *members)
        else:
            await self._if_unchanged(self._drop_if_unchanged, viewer_id, following_version, members)

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
        keys = [feed_key(viewer_id), following_version_key(viewer_id)]
        return int(await script(keys=keys, args=[following_version, *args]))

    # -- rebuilding ----------------------------------------------------------------------------

    async def try_lock_rebuild(self, viewer_id: int, token: str) -> bool:
        return bool(await self._redis.set(lock_key(viewer_id), token, nx=True, px=REBUILD_LOCK_MS))

    async def unlock_rebuild(self, viewer_id: int) -> None:
        await self._redis.delete(lock_key(viewer_id))

    async def begin_rebuild(self, viewer_id: int) -> None:
        """Make the key exist (BUILDING), so pushes made while we gather are not lost."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(feed_key(viewer_id), {BUILDING: 0})
            pipe.expire(feed_key(viewer_id), self._ttl)
            await pipe.execute()

    async def finish_rebuild(self, viewer_id: int, refs: list[FeedRef]) -> None:
        """Add the gathered refs, trim, and mark the feed COMPLETE."""
        await self._merge_refs(viewer_id, refs, finish=True)

    async def _merge_refs(self, viewer_id: int, refs: list[FeedRef], *, finish: bool) -> bool:
        args = [COMPLETE, BUILDING, self.feed_max, self._ttl, "1" if finish else "0"]
        args += [r.member() for r in refs]
        return bool(await self._merge(keys=[feed_key(viewer_id)], args=args))

    async def create_empty(self, viewer_ids: list[int]) -> None:
        """Give each viewer a complete, empty feed, pipelined (seeding: makes them active)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for viewer_id in viewer_ids:
                pipe.zadd(feed_key(viewer_id), {COMPLETE: 0})
                pipe.expire(feed_key(viewer_id), self._ttl)
            await pipe.execute()

    # -- followee sets -------------------------------------------------------------------------

    async def follows(self, viewer_id: int, user_ids: list[int]) -> list[bool] | None:
        """Whether the viewer follows each id, from the cached set; None if it is not cached."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(following_key(viewer_id))
            pipe.smismember(following_key(viewer_id), user_ids or [0])
            cached, flags = await pipe.execute()
        return [bool(f) for f in flags][: len(user_ids)] if cached else None

    async def following_version(self, viewer_id: int) -> str:
        return (await self._redis.get(following_version_key(viewer_id)) or b"0").decode()

    async def fill_following(
        self, viewer_id: int, user_ids: list[int], celebrity_ids: list[int], version: str
    ) -> bool:
        """Cache the followee set read from the graph, unless a follow changed it since
        `version` was read. True if written."""
        keys = [
            following_key(viewer_id),
            following_celebs_key(viewer_id),
            following_version_key(viewer_id),
        ]
        args = [version, FOLLOWING_TTL_SECONDS, len(user_ids), *user_ids, *celebrity_ids]
        return bool(await self._fill_following(keys=keys, args=args))

    async def invalidate_following(self, viewer_id: int) -> None:
        """Call after every follow/unfollow of the viewer, once the graph has changed."""
        await self.invalidate_following_many([viewer_id])

    async def invalidate_following_many(self, viewer_ids: list[int]) -> None:
        """Drop the cached followee sets of many viewers (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for viewer_id in viewer_ids:
                pipe.incr(following_version_key(viewer_id))
                pipe.delete(following_key(viewer_id), following_celebs_key(viewer_id))
            await pipe.execute()

    # -- presence ------------------------------------------------------------------------------

    async def mark_online(self, viewer_id: int, ttl_seconds: int) -> None:
        await self.mark_online_many([viewer_id], ttl_seconds)

    async def mark_online_many(
        self, viewer_ids: list[int], ttl_seconds: int, slots: list[tuple[int, str]] = ()
    ) -> None:
        """Refresh the presence of these viewers and the lapse time of these live slots."""
        lapse_ms = int(time.time() * 1000) + ttl_seconds * 1000
        async with self._redis.pipeline(transaction=False) as pipe:
            for viewer_id in viewer_ids:
                pipe.set(presence_key(viewer_id), 1, ex=ttl_seconds)
            for viewer_id, slot in slots:
                pipe.zadd(live_slots_key(viewer_id), {slot: lapse_ms}, xx=True)
                pipe.expire(live_slots_key(viewer_id), ttl_seconds)
            await pipe.execute()

    async def claim_live_slot(
        self, viewer_id: int, slot: str, max_slots: int, ttl_seconds: int
    ) -> bool:
        """Take one of the viewer's `max_slots` live-subscription slots; False if all are held
        (by live subscriptions whose heartbeat has not lapsed)."""
        args = [int(time.time() * 1000), ttl_seconds * 1000, max_slots, slot]
        return bool(await self._claim_slot(keys=[live_slots_key(viewer_id)], args=args))

    async def release_live_slot(self, viewer_id: int, slot: str) -> None:
        await self._redis.zrem(live_slots_key(viewer_id), slot)


def open_feed_cache(settings: Settings) -> FeedCache:
    client = aioredis.Redis.from_url(
        settings.feed_redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
    )
    return FeedCache(client, feed_max=settings.feed_max, ttl_seconds=settings.active_days * 86400)
