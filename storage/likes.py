"""Likes: which tweets each user liked, on the liker's shard of the documents Redis.

Keys (this module is their only writer); `{U}` is the liker's id:
  likes:{U}     sorted set (storage/tweet_counts.likes_key): one member per liked tweet, the
                16-byte ref (tweet id, author id, big-endian, as storage/feeds.FeedRef.member),
                scored by the like's time in ms (a time fits a double's 53 bits; an id would
                not). Newest like first is ZRANGE ... BYSCORE REV; ties (likes in the same ms)
                are ordered by member, so (time, ref) is a total order and a cursor.
Read here, owned elsewhere: retweets:{U} (storage/retweets.py's record of U's retweets, a hash
of refs; storage/tweet_counts.retweets_key), for the viewer's state.

Why a sorted set on the liker's shard: every read of the edges is about one user ("did the
viewer like these 20 tweets": one ZMSCORE; "U's likes, newest first": one key paged by score),
and a like storm on one tweet spreads these writes over the likers' shards. The like count is
the tweet's counter (storage/tweet_counts.py), changed by the caller only when `like`/`unlike`
says the edge changed, so a repeat never counts twice. The edge and the counter are on two
shards: no transaction spans them, and a process dying between the two leaves the count one off
(the edge is the truth; the count is a display figure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.feeds import FeedRef
from storage.redis_clients import DocumentsRedis, reply_bytes
from storage.tweet_counts import likes_key, retweets_key

MAX_TIES = 1000  # likes of one user in one ms read past a cursor (the rate limit keeps it ~1)


@dataclass(frozen=True, order=True)
class LikeCursor:
    """A position in a user's likes: newest first by time, then by ref."""

    liked_at_ms: int
    ref: FeedRef


@dataclass(frozen=True)
class Liked:
    cursor: LikeCursor

    @property
    def ref(self) -> FeedRef:
        return self.cursor.ref


@dataclass(frozen=True)
class ViewerEngagement:
    liked: bool = False
    retweeted: bool = False


# the four states, shared (a page builds one per tweet)
_STATES = {
    (liked, retweeted): ViewerEngagement(liked, retweeted)
    for liked in (False, True)
    for retweeted in (False, True)
}


def viewer_engagement(liked: object, retweeted: object) -> ViewerEngagement:
    """The state from two replies that are truthy when the viewer liked / retweeted."""
    return _STATES[bool(liked), bool(retweeted)]


async def read_viewer_engagement(
    client: DocumentsRedis, viewer_id: int, refs: list[FeedRef]
) -> list[ViewerEngagement]:
    """What the viewer did to `refs`, in order: ZMSCORE of its likes and HMGET of its retweets
    (both keys in the viewer's slot) pipelined, one round trip."""
    if not refs:
        return []
    members: list[Any] = [ref.member() for ref in refs]  # bytes (redis-py types them str)
    async with client.pipeline(transaction=False) as pipe:
        pipe.zmscore(likes_key(viewer_id), members)
        pipe.hmget(retweets_key(viewer_id), members)
        scores, retweets = await pipe.execute()
    return [viewer_engagement(*state) for state in zip(scores, retweets, strict=True)]


class LikeStore:
    def __init__(self, client: DocumentsRedis) -> None:
        self._redis = client

    async def like(self, user_id: int, ref: FeedRef, at_ms: int) -> bool:
        """Record that the user likes the tweet; True if it was not liked before."""
        return bool(await self._redis.zadd(likes_key(user_id), {ref.member(): at_ms}, nx=True))

    async def unlike(self, user_id: int, ref: FeedRef) -> bool:
        """Forget the like; True if there was one."""
        return bool(await self._redis.zrem(likes_key(user_id), ref.member()))

    async def page(self, user_id: int, count: int, after: LikeCursor | None) -> list[Liked]:
        """Up to `count` of the user's likes older than `after` (None: the newest), newest
        first: one round trip (two commands pipelined on the user's node)."""
        key = likes_key(user_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            if after is None:
                pipe.zrange(key, "+inf", "-inf", desc=True, byscore=True, offset=0, num=count,
                            withscores=True)  # fmt: skip
            else:
                at = after.liked_at_ms
                pipe.zrange(key, at, at, desc=True, byscore=True, offset=0, num=MAX_TIES,
                            withscores=True)  # fmt: skip
                pipe.zrange(key, f"({at}", "-inf", desc=True, byscore=True, offset=0, num=count,
                            withscores=True)  # fmt: skip
            replies = await pipe.execute()
        found = [
            LikeCursor(int(score), FeedRef.from_member(reply_bytes(member)))
            for reply in replies
            for member, score in reply
        ]
        return [Liked(c) for c in found if after is None or c < after][:count]

    async def viewer_engagement(
        self, viewer_id: int, refs: list[FeedRef]
    ) -> list[ViewerEngagement]:
        """Whether the viewer liked and retweeted each tweet, in order: one round trip to the
        viewer's node."""
        return await read_viewer_engagement(self._redis, viewer_id, refs)
