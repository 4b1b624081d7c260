"""Retweets: `retweet` and `undoRetweet` (Twitter's rules).

A retweet is a tweet of the retweeter's, without text, that names the original: it has its own
id and place in the retweeter's timeline and fans out to their followers like any tweet (the
celebrity rule included: a celebrity's retweets are merged at read time). Feeds and timelines
show the original, "retweeted by" the retweeter.

- Idempotent: a second retweet of the same original returns it unchanged (decided by the script
  that stores the retweet, storage/retweets.py, so concurrent repeats make one retweet); undoing
  what is not retweeted changes nothing. Neither repeat costs rate.
- Retweeting a retweet retweets its original; retweeting your own tweet is allowed; a deleted
  or unknown tweet, or an undone retweet's id, is NotFound (social.targets).
- The original's retweets counter moves exactly when a retweet is made or undone.
- Undo tombstones the retweet and takes it out of every feed through the delete pipeline (the
  fan-out's UNPUSH, which tells live viewers), as deleting an original takes down its retweets
  (social/fanout.py).
"""

from __future__ import annotations

from social.errors import NotFound
from social.fanout_plan import live_event
from social.ports import FanoutAction, JobQueue
from social.posting import Clock
from social.targets import resolve
from social.throttle import Throttle
from social.visibility import feed_ref
from storage.feeds import FeedCache, FeedRef
from storage.ids import IdGenerator
from storage.retweets import RetweetStore
from storage.tweet_cache import TweetCache, TweetInvalidations
from storage.tweet_counts import Count, TweetCounters
from storage.tweets import Tweet, TweetId, TweetStore


class Retweeting:
    """`rate_retweets` ("N/S") bounds retweets and undos per user."""

    def __init__(
        self,
        *,
        tweets: TweetStore,
        retweets: RetweetStore,
        counters: TweetCounters,
        tweet_cache: TweetCache,
        invalidations: TweetInvalidations,
        feeds: FeedCache,
        ids: IdGenerator,
        jobs: JobQueue,
        throttle: Throttle,
        clock: Clock,
        rate_retweets: str,
    ) -> None:
        self._tweets = tweets
        self._retweets = retweets
        self._counters = counters
        self._cache = tweet_cache
        self._invalidations = invalidations
        self._feeds = feeds
        self._ids = ids
        self._jobs = jobs
        self._throttle = throttle
        self._clock = clock
        self._rate = rate_retweets

    async def _original(self, target: TweetId) -> Tweet | None:
        """The tweet a retweet of `target` retweets (tombstones included): `target`'s document,
        or its original's if it is a live retweet; None if unknown or an undone retweet
        (social.targets)."""
        return await resolve(self._tweets.get_many, target)

    async def retweet(self, viewer: int, target: TweetId) -> Tweet:
        """Retweet `target` (or the original it retweets); returns the original."""
        original = await self._original(target)
        if original is None or original.deleted:
            raise NotFound("no such tweet", field="tweetId")
        shows = (original.author_id, original.tweet_id)
        if await self._retweets.retweet_of(viewer, shows) is not None:
            return original
        await self._throttle.charge("retweet", viewer, self._rate)
        retweet = Tweet(
            tweet_id=self._ids.next_id(),
            author_id=viewer,
            text="",
            created_at_ms=int(self._clock() * 1000),
            retweet_of=shows,
        )
        # Queued first, as every new tweet's (social/posting.py): a job whose retweet lost a
        # concurrent race finds the tombstone the losing store leaves and ends quietly.
        await self._jobs.fan_out(viewer, retweet.tweet_id, FanoutAction.PUSH)
        if await self._retweets.create(retweet) != retweet.tweet_id:
            return original  # a concurrent retweet made it first
        await self._retweets.index(retweet)
        await self._counters.bump(*shows, Count.RETWEETS, +1)
        ref = FeedRef(retweet.tweet_id, viewer)
        event = live_event("tweet", viewer, retweet.tweet_id)
        await self._feeds.push_to_feeds(ref, [viewer], event, feed_ref(shows))
        return original

    async def undo(self, viewer: int, target: TweetId) -> TweetId:
        """Undo the viewer's retweet of `target` (or of the original it retweets), if any;
        returns the original's (author id, tweet id)."""
        original = await self._original(target)
        if original is None:
            raise NotFound("no such tweet", field="tweetId")
        shows = (original.author_id, original.tweet_id)
        retweet_id = await self._retweets.retweet_of(viewer, shows)
        if retweet_id is None:
            return shows
        [retweet] = await self._tweets.get_many([(viewer, retweet_id)])
        if retweet is None:
            return shows
        await self._throttle.charge("retweet", viewer, self._rate)
        if not await self._retweets.undo(retweet):
            return shows  # a concurrent undo did it
        await self._retweets.unindex(retweet)
        if not original.deleted:
            await self._counters.bump(*shows, Count.RETWEETS, -1)
        ref = (viewer, retweet_id)
        self._cache.evict(ref)
        await self._invalidations.publish(ref)
        await self._jobs.fan_out(viewer, retweet_id, FanoutAction.UNPUSH)
        gone = live_event("deleted", viewer, retweet_id, shows)
        await self._feeds.unpush_from_feeds(
            FeedRef(retweet_id, viewer), [viewer], gone, feed_ref(shows)
        )
        return shows
