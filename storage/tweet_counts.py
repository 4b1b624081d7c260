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
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from storage.redis_clients import DocumentsRedis, mget

COUNTER_BITS = 32
COUNTS_BYTES = 4 * COUNTER_BITS // 8


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


def likes_key(user_id: int) -> str:
    """Sorted set of the tweets `user_id` liked (16-byte refs: tweet id, author id)."""
    return f"likes:{{{user_id}}}"


def retweets_key(user_id: int) -> str:
    """Hash of the tweets `user_id` retweeted: 16-byte ref (tweet id, author id) -> the id of
    the user's retweet, in decimal."""
    return f"retweets:{{{user_id}}}"


class TweetCounters:
    """Reads and changes the counts; the only writer of `counts:` keys."""

    def __init__(self, client: DocumentsRedis) -> None:
        self._redis = client

    async def bump(self, author_id: int, tweet_id: int, count: Count, delta: int) -> int:
        """Add `delta` (negative to subtract) to one counter; returns its new value (0 at the
        least: the counter saturates instead of wrapping)."""
        [value] = await self._redis.execute_command(
            "BITFIELD", counts_key(author_id, tweet_id), "OVERFLOW", "SAT",
            "INCRBY", "u32", f"#{int(count)}", delta,
        )  # fmt: skip
        return int(value)

    async def read(self, tweets: list[tuple[int, int]]) -> list[TweetCounts]:
        """The counts of (author id, tweet id) pairs, in order; one round trip per node."""
        raws = await mget(self._redis, [counts_key(a, t) for a, t in tweets])
        return [TweetCounts.decode(raw) for raw in raws]
