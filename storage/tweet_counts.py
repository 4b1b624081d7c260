"""Engagement counts of tweets (replies, retweets, quotes, likes), and the names of the keys
that record what one user did to tweets.

Keys:
  counts:{A}:<T>   the counts of tweet T by author A, on the tweet's shard: one string of four
                   unsigned 32-bit big-endian counters (BITFIELD u32 at #0 replies, #1 retweets,
                   #2 quotes, #3 likes). A string, not a hash, so a page reads its tweets' counts
                   in the same MGET as their documents (one round trip); a change is one BITFIELD
                   INCRBY with OVERFLOW SAT: atomic, O(1), never below zero. A missing key or a
                   short string reads as zeros (BITFIELD only grows the string as far as the
                   counter it touched).
  likes:{U}        the tweets U liked, on U's shard (see `likes_key`).
  retweets:{U}     the tweets U retweeted, on U's shard (see `retweets_key`).
The edges live with the actor, not the tweet: every read of them is about one user ("has the
viewer liked or retweeted these 20 tweets" is one call on one node; "U's likes" pages one key),
and a like storm on one tweet spreads its writes over the likers' nodes; only the tweet's counter
is shared by all of them.

Pub/sub channel (sharded pub/sub on a cluster, storage/pubsub.py):
  counts_changed:{A}:<T>   the tweet's counts string after a change (storage/tweet_updates.py
                   listens). It hashes to the counts key's slot, so the script that changes the
                   counter publishes on its own node. When the tweet is deleted, one more
                   message on the same channel says so (`publish_deleted`): its counts padded to
                   COUNTS_BYTES, then DELETED_MARK. A counts message is never longer than
                   COUNTS_BYTES, so the length tells them apart (`decode_message`), and being on
                   the same channel of the same node, the deletion reaches a listener after
                   every counts message published before it.
Every bump is published, coalesced per process and per tweet: the first bump of a tweet in an
interval (PUBLISH_INTERVAL_SECONDS) publishes in its own round trip (one script: change, then
publish the counts); later bumps within the interval are a bare BITFIELD, and one publish of the
counts as they then are follows when the interval ends (the trailing edge). A like storm of
thousands of bumps a second on one tweet thus costs each API process one publish a second on
that tweet's channel, and the last change is always published. Delivery is at most once (a
publish whose round trip fails is logged and lost; the next change publishes again). A
deletion is never coalesced: it is published at once, by every call.

Measured (bench/likes.py, README): one Redis does >100k BITFIELD INCRBY a second on one key, far
above what the API processes in front of it can send, so the counter is one plain key, not
striped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from enum import IntEnum

from redis.typing import EncodableT

from storage import lua
from storage.pubsub import publish_command
from storage.redis_clients import DocumentsRedis, mget

COUNTER_BITS = 32
COUNTS_BYTES = 4 * COUNTER_BITS // 8
PUBLISH_INTERVAL_SECONDS = 1.0  # per process and tweet: at most one publish of its counts
DELETED_MARK = b"deleted"  # ends the message saying a tweet was deleted (after its counts)
_CHANNEL_PREFIX = "counts_changed:{"

log = logging.getLogger(__name__)


class Count(IntEnum):
    """Which counter of a tweet; the value is its index in the counts string."""

    REPLIES = 0
    RETWEETS = 1
    QUOTES = 2
    LIKES = 3


@dataclass(frozen=True)
class TweetCounts:
    replies: int = 0
    retweets: int = 0
    quotes: int = 0
    likes: int = 0

    @classmethod
    def decode(cls, raw: bytes | None) -> TweetCounts:
        padded = (raw or b"").ljust(COUNTS_BYTES, b"\x00")
        step = COUNTER_BITS // 8
        values = [int.from_bytes(padded[i : i + step], "big") for i in range(0, 16, step)]
        return cls(*values)


def counts_key(author_id: int, tweet_id: int) -> str:
    return f"counts:{{{author_id}}}:{tweet_id}"


def counts_channel(author_id: int, tweet_id: int) -> str:
    """The channel on which a tweet's counts are published after they change."""
    return f"{_CHANNEL_PREFIX}{author_id}}}:{tweet_id}"


def tweet_of_channel(channel: str) -> tuple[int, int]:
    """(author id, tweet id) of a `counts_channel`."""
    author, _, tweet = channel.removeprefix(_CHANNEL_PREFIX).partition("}:")
    return int(author), int(tweet)


def decode_message(data: bytes) -> tuple[TweetCounts, bool]:
    """A message of a `counts_channel`: the tweet's counts, and whether it says the tweet was
    deleted (then they are the counts it ended with)."""
    if len(data) > COUNTS_BYTES:
        return TweetCounts.decode(data[:COUNTS_BYTES]), True
    return TweetCounts.decode(data), False


def likes_key(user_id: int) -> str:
    """Sorted set of the tweets `user_id` liked (16-byte refs: tweet id, author id)."""
    return f"likes:{{{user_id}}}"


def retweets_key(user_id: int) -> str:
    """Hash of the tweets `user_id` retweeted: 16-byte ref (tweet id, author id) -> the id of
    the user's retweet, in decimal."""
    return f"retweets:{{{user_id}}}"


class TweetCounters:
    """Reads and changes the counts; the only writer of `counts:` keys, and the only publisher
    on their channels (coalesced: see the module's docstring)."""

    def __init__(
        self, client: DocumentsRedis, *, publish_interval_seconds: float = PUBLISH_INTERVAL_SECONDS
    ) -> None:
        self._redis = client
        self._bump_and_publish = lua.register(client, "counts_bump")
        self._publish_command = publish_command(client)
        self._interval = publish_interval_seconds
        self._published_at: dict[tuple[int, int], float] = {}  # monotonic, this process's
        self._prune_at = 1024  # size of `_published_at` that triggers forgetting old entries
        self._trailing: dict[tuple[int, int], asyncio.Task[None]] = {}

    async def bump(self, author_id: int, tweet_id: int, count: Count, delta: int) -> int:
        """Add `delta` (negative to subtract) to one counter; returns its new value (0 at the
        least: the counter saturates instead of wrapping). The change is published on the
        tweet's channel, at once or within PUBLISH_INTERVAL_SECONDS (coalesced)."""
        ref = (author_id, tweet_id)
        now = time.monotonic()
        if ref not in self._trailing and now - self._published_at.get(ref, -self._interval) >= (
            self._interval
        ):
            self._published_at[ref] = now  # the leading edge: this call publishes
            self._forget_old(now)
            return int(await self._script(ref, f"#{int(count)}", delta))
        [value] = await self._redis.execute_command(
            "BITFIELD", counts_key(author_id, tweet_id), "OVERFLOW", "SAT",
            "INCRBY", "u32", f"#{int(count)}", delta,
        )  # fmt: skip
        if ref not in self._trailing:  # else a publish not yet sent will read this change
            delay = self._published_at.get(ref, now) + self._interval - time.monotonic()
            self._trailing[ref] = asyncio.create_task(self._publish_later(ref, delay))
        return int(value)

    async def publish_deleted(self, author_id: int, tweet_id: int) -> None:
        """Tell the tweet's watchers it was deleted (storage/tweet_updates.py stops watching
        it): one message on its channel, at once, with the counts it ended with. Call it after
        the tombstone is stored (a watcher that checks then finds it); repeating it is harmless
        (a watcher is told once)."""
        await self._script((author_id, tweet_id), "#0", 0, DELETED_MARK)

    async def _script(
        self, ref: tuple[int, int], offset: str, delta: int, mark: bytes = b""
    ) -> int:
        args: list[EncodableT] = [offset, delta, counts_channel(*ref), self._publish_command, mark]
        return int(await self._bump_and_publish(keys=[counts_key(*ref)], args=args))

    async def _publish_later(self, ref: tuple[int, int], delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))
        # From here on a bump schedules a publish of its own: this one may read before it.
        del self._trailing[ref]
        self._published_at[ref] = time.monotonic()
        try:
            await self._script(ref, "#0", 0)
        except Exception:  # at most once: the next change publishes again
            log.warning("publishing the counts of tweet %s failed", ref, exc_info=True)

    def _forget_old(self, now: float) -> None:
        """Drop publish times older than the interval (they no longer hold anything back)."""
        if len(self._published_at) < self._prune_at:
            return
        self._published_at = {
            r: at for r, at in self._published_at.items() if now - at < self._interval
        }
        self._prune_at = max(1024, 2 * len(self._published_at))

    async def aclose(self) -> None:
        """Send the publishes still waiting for their interval to end, now (shutdown)."""
        for task in list(self._trailing.values()):
            task.cancel()
        refs = list(self._trailing)
        self._trailing.clear()
        for ref in refs:
            try:
                await self._script(ref, "#0", 0)
            except Exception:
                log.warning("publishing the counts of tweet %s failed", ref, exc_info=True)

    async def read(self, tweets: list[tuple[int, int]]) -> list[TweetCounts]:
        """The counts of (author id, tweet id) pairs, in order; one round trip per node."""
        if not tweets:
            return []
        raws = await mget(self._redis, [counts_key(a, t) for a, t in tweets])
        return [TweetCounts.decode(raw) for raw in raws]
