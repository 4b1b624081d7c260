"""Engagement: likes (like, unlike, a user's likes), and which tweets a live subscriber may
watch for count changes. Replies, quotes and retweets (social/posting.py,
social/retweeting.py) change the same counters (storage/tweet_counts.py), which publish every
change themselves.

A like is an edge on the liker's shard (storage/likes.py) and one counter on the tweet's shard;
the counter moves only when the edge did, so liking twice counts once and unliking what was
never liked changes nothing, whatever the interleaving of requests. The counter saturates at
zero, so an unlike's -1 must not reach it before its like's +1: one process runs the likes and
unlikes of one (user, tweet) one at a time (the same user racing themselves through two API
processes within the same few microseconds could still lose one, at a count of zero).
Only an existing, undeleted tweet can be liked or unliked (NotFound otherwise, nothing changed);
a live retweet's id likes its original (social.targets), an undone one's is NotFound.
Every like and unlike attempt is charged against RATE_LIKES, repeats included: each costs the
same writes' worth of work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from social.errors import InvalidInput, NotFound
from social.feed import MAX_READ_ROUNDS, LoadTweets
from social.paging import page_size
from social.targets import resolve, resolve_many
from social.throttle import Throttle
from storage.feeds import FeedRef
from storage.likes import LikeCursor, LikeStore
from storage.tweet_counts import Count, TweetCounters
from storage.tweets import Tweet

Clock = Callable[[], float]  # seconds since the epoch


@dataclass(frozen=True)
class LikesPage:
    items: list[tuple[LikeCursor, Tweet]]  # newest like first
    has_next_page: bool
    end_cursor: LikeCursor | None  # the last like read (shown or skipped), to continue after


def watchable(refs: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """The tweets one subscription watches: 1..`limit` ids (counted as sent), each once."""
    if not 1 <= len(refs) <= limit:
        raise InvalidInput(f"ids must name 1 to {limit} tweets", field="ids", maxIds=limit)
    return list(dict.fromkeys(refs))


async def watchable_tweets(
    refs: list[tuple[int, int]], limit: int, load: LoadTweets
) -> list[tuple[int, int]]:
    """The tweets one subscription watches (`watchable`), each a live tweet (one batched load,
    two if some are retweets): a live retweet's id watches its original (social.targets);
    NotFound (with `index`, the position of the first id that is not a live tweet: deleted,
    unknown, an undone retweet) refuses the subscription before anything is watched."""
    wanted = watchable(refs, limit)
    found = await resolve_many(load, wanted)
    for index, tweet in enumerate(found):
        if tweet is None or not shown(tweet):
            raise NotFound("no such tweet", field="ids", index=refs.index(wanted[index]))
    return list(dict.fromkeys((t.author_id, t.tweet_id) for t in found if t is not None))


def shown(tweet: Tweet | None) -> bool:
    return tweet is not None and not tweet.deleted


class Engagement:
    """Likes. `rate_likes` ("N/S") bounds likes and unlikes per user; lists hold
    1..`max_page_size` tweets."""

    def __init__(
        self,
        *,
        likes: LikeStore,
        counters: TweetCounters,
        throttle: Throttle,
        clock: Clock,
        rate_likes: str,
        max_page_size: int,
    ) -> None:
        self._likes = likes
        self._counters = counters
        self._throttle = throttle
        self._clock = clock
        self._rate_likes = rate_likes
        self._max_page_size = max_page_size
        self._changing: dict[tuple[int, FeedRef], tuple[asyncio.Lock, int]] = {}

    async def like(self, viewer: int, author: int, tweet_id: int, load: LoadTweets) -> Tweet:
        """The viewer likes the tweet (idempotent; a retweet's id likes its original); returns
        it."""
        tweet = await self._existing(author, tweet_id, load)
        await self._throttle.charge("like", viewer, self._rate_likes)
        ref = FeedRef(tweet.tweet_id, tweet.author_id)
        now_ms = int(self._clock() * 1000)
        await self._change(viewer, ref, lambda: self._likes.like(viewer, ref, now_ms), 1)
        return tweet

    async def unlike(self, viewer: int, author: int, tweet_id: int, load: LoadTweets) -> Tweet:
        """The viewer no longer likes the tweet (idempotent; a retweet's id: its original);
        returns it."""
        tweet = await self._existing(author, tweet_id, load)
        await self._throttle.charge("like", viewer, self._rate_likes)
        ref = FeedRef(tweet.tweet_id, tweet.author_id)
        await self._change(viewer, ref, lambda: self._likes.unlike(viewer, ref), -1)
        return tweet

    async def _change(
        self, viewer: int, ref: FeedRef, edge: Callable[[], Awaitable[bool]], delta: int
    ) -> None:
        """Change the edge; if it changed, the count. One at a time per (viewer, tweet)."""
        key = (viewer, ref)
        lock, users = self._changing.get(key, (asyncio.Lock(), 0))
        self._changing[key] = (lock, users + 1)
        try:
            async with lock:
                if await edge():
                    await self._counters.bump(ref.author_id, ref.tweet_id, Count.LIKES, delta)
        finally:
            lock, users = self._changing[key]
            if users == 1:
                del self._changing[key]
            else:
                self._changing[key] = (lock, users - 1)

    async def _existing(self, author: int, tweet_id: int, load: LoadTweets) -> Tweet:
        """The live tweet the id names (social.targets: a live retweet's id, its original)."""
        tweet = await resolve(load, (author, tweet_id))
        if tweet is None or tweet.deleted:
            raise NotFound("no such tweet", field="tweetId")
        return tweet

    async def likes(
        self, user_id: int, first: int, after: LikeCursor | None, load: LoadTweets
    ) -> LikesPage:
        """A page of the tweets the user liked, newest like first. Deleted tweets are skipped
        and more likes read in their place (up to MAX_READ_ROUNDS reads; a page still short
        then says it has a next page)."""
        size = page_size(first, self._max_page_size)
        items: list[tuple[LikeCursor, Tweet]] = []
        cursor, exhausted = after, False
        for _ in range(MAX_READ_ROUNDS):
            need = size - len(items)
            batch = await self._likes.page(user_id, need + 1, cursor)  # one more: is there more?
            taken = batch[:need]
            found = await load([(liked.ref.author_id, liked.ref.tweet_id) for liked in taken])
            for liked, tweet in zip(taken, found, strict=True):
                cursor = liked.cursor
                if tweet is not None and shown(tweet):
                    items.append((liked.cursor, tweet))
            exhausted = len(batch) <= need
            if exhausted or len(items) == size:
                break
        return LikesPage(items=items, has_next_page=not exhausted, end_cursor=cursor)
