"""The per-process cache of hot tweets in front of the documents, and its invalidation.

Entries expire after a TTL and the least recently used go first past the size cap. Deletion
publishes the tweet on `CHANNEL`; every API process listens on one pub/sub listener and evicts
it (on a documents cluster: sharded pub/sub, the channel's fixed tag putting it on one node;
storage/pubsub.py). If that connection drops, the listener clears the whole cache on reconnect
(it may have missed messages), so a deleted tweet is served by no process for longer than the
pub/sub delivery, or, if a message is lost, for longer than the TTL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from storage import pubsub
from storage.redis_clients import DocumentsRedis
from storage.tweets import Tweet

CHANNEL = "tweets:{invalidate}"
RECONNECT_DELAY_SECONDS = 1.0

log = logging.getLogger(__name__)

TweetRef = tuple[int, int]  # (author id, tweet id)


class TweetCache:
    def __init__(self, *, max_entries: int, ttl_seconds: float) -> None:
        self._entries: OrderedDict[TweetRef, tuple[float, Tweet]] = OrderedDict()
        # When each ref was last invalidated: a read that began before that must not be cached.
        self._evicted_at: OrderedDict[TweetRef, float] = OrderedDict()
        self._cleared_at = float("-inf")
        self._max_entries = max_entries
        self._ttl = ttl_seconds

    @staticmethod
    def now() -> float:
        """The clock `put` compares with: take it before reading from Redis."""
        return time.monotonic()

    def get(self, ref: TweetRef) -> Tweet | None:
        entry = self._entries.get(ref)
        if entry is None:
            return None
        stored_at, tweet = entry
        if time.monotonic() - stored_at > self._ttl:
            del self._entries[ref]
            return None
        self._entries.move_to_end(ref)
        return tweet

    def put(self, tweet: Tweet, read_started_at: float) -> None:
        """Cache `tweet`, read from Redis at `read_started_at` (from `now()`), unless it was
        invalidated since: that read may predate the deletion."""
        ref = (tweet.author_id, tweet.tweet_id)
        if max(self._cleared_at, self._evicted_at.get(ref, float("-inf"))) >= read_started_at:
            return
        self._entries[ref] = (read_started_at, tweet)
        self._entries.move_to_end(ref)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def evict(self, ref: TweetRef) -> None:
        self._entries.pop(ref, None)
        now = time.monotonic()
        self._evicted_at[ref] = now
        self._evicted_at.move_to_end(ref)
        while self._evicted_at and next(iter(self._evicted_at.values())) < now - self._ttl:
            self._evicted_at.popitem(last=False)  # older than any read still in flight

    def clear(self) -> None:
        """Forget everything, and refuse results of reads that began before now."""
        self._entries.clear()
        self._cleared_at = time.monotonic()

    def __len__(self) -> int:
        return len(self._entries)


class TweetInvalidations:
    """Tells every API process (their `listen_for_invalidations`) to evict a tweet."""

    def __init__(self, client: DocumentsRedis) -> None:
        self._redis = client

    async def publish(self, ref: TweetRef) -> None:
        await pubsub.publish(self._redis, CHANNEL, f"{ref[0]}:{ref[1]}")


async def listen_for_invalidations(
    client: DocumentsRedis, cache: TweetCache, ready: asyncio.Event
) -> None:
    """Evict invalidated tweets until cancelled; sets `ready` once subscribed."""
    listener = pubsub.listener(client)
    subscribed = False
    try:
        while True:
            try:
                if subscribed:
                    await listener.resubscribe()
                else:
                    await listener.subscribe(CHANNEL)
                    subscribed = True
                cache.clear()  # anything published while we were not listening is lost
                ready.set()
                while True:
                    message = await listener.next_message(wait=None)
                    if message is not None:
                        author, tweet = message[1].split(b":")
                        cache.evict((int(author), int(tweet)))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("tweet invalidation listener lost its connection", exc_info=True)
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)
    finally:
        await listener.aclose()
