"""Retweets: who retweeted what, with the retweeter and with the original.

A retweet is a tweet of the retweeter U's (`tweet:{U}:<R>`, in U's timeline, fanned out to U's
followers like any tweet) whose document names the original in `retweet_of` and has no text.
Keys (this module is their only writer):
  retweets:{U}         hash, on U's shard (storage/tweet_counts.py `retweets_key`): the
                       original's 16-byte ref (tweet id, author id, big-endian) -> the id of U's
                       retweet of it, in decimal. Written by the same script that stores the
                       retweet and appends it to U's timeline (storage/lua/retweet_create.lua:
                       all three keys share U's slot), so a retweet is atomic and idempotent: a
                       second one, concurrent or not, returns the first.
  retweeters:{A}:<T>   set, on the original's shard: the 16-byte refs (retweet id, retweeter id)
                       of the retweets of A's tweet T. Read once, when T is deleted, to take its
                       retweets down everywhere. Written after the retweet is stored (another
                       node): a crash between leaves a retweet unindexed, which reads still
                       hide once T is gone (an entry whose original is deleted never shows).
Placement: the edge "U retweeted T" lives with the actor (every read of it is about one user:
"has the viewer retweeted these tweets", "U's retweets"), like likes; the reverse index lives
with the tweet because only the tweet's deletion reads it; the count is storage/tweet_counts.py.
"""

from __future__ import annotations

from redis.typing import EncodableT

from storage import lua
from storage.conversations import member_ref, ref_member
from storage.redis_clients import DocumentsRedis, reply_bytes
from storage.tweet_counts import retweets_key
from storage.tweets import Tweet, TweetId, member, timeline_key, tweet_key

LOSER_TOMBSTONE_SECONDS = 86400  # outlives every retry of the losing call's fan-out job


def retweeters_key(author_id: int, tweet_id: int) -> str:
    return f"retweeters:{{{author_id}}}:{tweet_id}"


class RetweetStore:
    def __init__(self, client: DocumentsRedis) -> None:
        self._redis = client
        self._create = lua.register(client, "retweet_create")
        self._undo = lua.register(client, "retweet_undo")

    async def retweet_of(self, user_id: int, original: TweetId) -> int | None:
        """The id of `user_id`'s retweet of `original`, if there is one."""
        raw = await self._redis.hget(retweets_key(user_id), ref_member(original))
        return None if raw is None else int(raw)

    async def retweeted(self, user_id: int, originals: list[TweetId]) -> list[bool]:
        """Whether `user_id` has a live retweet of each of `originals` (one HMGET)."""
        if not originals:
            return []
        raws = await self._redis.hmget(retweets_key(user_id), [ref_member(o) for o in originals])
        return [raw is not None for raw in raws]

    def _call(self, retweet: Tweet, document: str) -> tuple[list[str], list[EncodableT]]:
        assert retweet.retweet_of is not None
        keys = [
            tweet_key(retweet.author_id, retweet.tweet_id),
            timeline_key(retweet.author_id),
            retweets_key(retweet.author_id),
        ]
        args: list[EncodableT] = [
            document,
            member(retweet.tweet_id),
            ref_member(retweet.retweet_of),
            retweet.tweet_id,
        ]
        return keys, args

    async def create(self, retweet: Tweet) -> int:
        """Store `retweet` (a document with `retweet_of`) unless its author retweeted that
        original already: the id of the author's retweet of it (`retweet.tweet_id` if this
        call made it). A call that loses leaves an expiring tombstone under its own id, so
        the fan-out job queued for that id before the call finds it deleted and does nothing."""
        keys, args = self._call(retweet, retweet.to_json())
        args += [retweet.tombstone().to_json(), LOSER_TOMBSTONE_SECONDS]
        return int(await self._create(keys=keys, args=args))

    async def undo(self, retweet: Tweet) -> bool:
        """Tombstone `retweet`, out of its author's timeline and retweets; True if this call did
        it (once, however often it is sent)."""
        keys, args = self._call(retweet, retweet.tombstone().to_json())
        return bool(await self._undo(keys=keys, args=args))

    async def index(self, retweet: Tweet) -> None:
        """Record `retweet` with its original (idempotent)."""
        assert retweet.retweet_of is not None
        ref = ref_member((retweet.author_id, retweet.tweet_id))
        await self._redis.sadd(retweeters_key(*retweet.retweet_of), ref)

    async def unindex(self, retweet: Tweet) -> None:
        assert retweet.retweet_of is not None
        ref = ref_member((retweet.author_id, retweet.tweet_id))
        await self._redis.srem(retweeters_key(*retweet.retweet_of), ref)

    async def retweets(self, original: TweetId) -> list[TweetId]:
        """The (retweeter id, retweet id) refs of the retweets of `original` still indexed."""
        raws = await self._redis.smembers(retweeters_key(*original))
        return sorted(member_ref(reply_bytes(raw)) for raw in raws)
