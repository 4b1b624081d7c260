"""Following and unfollowing, follow lists and suggestions.

A follow shows at once: the graph changes, the viewer's cached followee set is dropped, and the
new followee's recent tweets are merged into the viewer's feed inline. An unfollow hides at once
(reads check the followee set); a `reconcile` job reclaims the feed space later.
"""

from __future__ import annotations

from collections.abc import Callable

from graph.port import (
    CannotFollowSelf,
    EdgeCursor,
    EdgePage,
    FollowLimitReached,
    SocialGraph,
    Suggestion,
    UnknownUser,
)
from social.errors import InvalidInput, NotFound
from social.paging import page_size
from social.ports import JobQueue
from social.throttle import Throttle
from social.visibility import feed_ref
from storage.feeds import FeedCache, FeedRef
from storage.followee_sets import FolloweeSets
from storage.tweets import TweetStore

Clock = Callable[[], float]  # seconds since the epoch


class Following:
    """`rate_follows` ("N/S") bounds follows and unfollows together; a follow merges the
    followee's newest `merge_tweets` tweets; nobody follows more than `max_following`."""

    def __init__(
        self,
        *,
        graph: SocialGraph,
        feeds: FeedCache,
        followee_sets: FolloweeSets,
        tweets: TweetStore,
        jobs: JobQueue,
        throttle: Throttle,
        clock: Clock,
        rate_follows: str,
        merge_tweets: int,
        max_following: int,
        max_page_size: int,
    ) -> None:
        self._graph = graph
        self._feeds = feeds
        self._followee_sets = followee_sets
        self._tweets = tweets
        self._jobs = jobs
        self._throttle = throttle
        self._clock = clock
        self._rate_follows = rate_follows
        self._merge_tweets = merge_tweets
        self._max_following = max_following
        self._max_page_size = max_page_size

    async def follow(self, viewer: int, followee: int) -> None:
        """Make the viewer follow `followee`. Idempotent."""
        await self._throttle.charge("follow", viewer, self._rate_follows)
        try:
            await self._graph.follow(viewer, followee, at_ms=int(self._clock() * 1000))
        except CannotFollowSelf:
            raise InvalidInput("you cannot follow yourself", field="userId") from None
        except UnknownUser:
            raise NotFound("no such user", field="userId") from None
        except FollowLimitReached:
            raise InvalidInput(
                f"you already follow the maximum of {self._max_following} accounts"
            ) from None
        await self._followee_sets.invalidate_following(viewer)
        await self._merge_recent_tweets(viewer, followee)

    async def _merge_recent_tweets(self, viewer: int, followee: int) -> None:
        """Put the new followee's recent tweets into the viewer's feed right away (if the viewer
        has a feed; celebrities' tweets are merged at read time anyway). Their documents are
        read (one round trip) to tell the merge which are retweets of what: it keeps every
        entry and shows each original once, by the rule pushes and rebuilds apply (the earliest
        entry shows)."""
        recent = await self._tweets.recent_tweet_ids([followee], self._merge_tweets)
        refs = [FeedRef(tweet_id, followee) for tweet_id in recent[followee]]
        if not refs:
            return
        documents = await self._tweets.get_many([(r.author_id, r.tweet_id) for r in refs])
        originals = {
            ref: feed_ref(tweet.retweet_of)
            for ref, tweet in zip(refs, documents, strict=True)
            if tweet is not None and tweet.retweet_of is not None
        }
        await self._feeds.merge_into_feed(viewer, refs, originals)

    async def unfollow(self, viewer: int, followee: int) -> None:
        """Make the viewer stop following `followee`. Idempotent."""
        if viewer == followee:
            raise InvalidInput("you cannot unfollow yourself", field="userId")
        await self._throttle.charge("follow", viewer, self._rate_follows)
        try:
            await self._graph.unfollow(viewer, followee)
        except UnknownUser:
            raise NotFound("no such user", field="userId") from None
        # Reads stop showing the followee at once (the followee set is dropped); the job only
        # reclaims the feed space.
        await self._followee_sets.invalidate_following(viewer)
        await self._jobs.reconcile(viewer, followee)

    async def followers(self, user_id: int, first: int, after: EdgeCursor | None) -> EdgePage:
        size = page_size(first, self._max_page_size)
        return await self._graph.followers_page(user_id, size, after)

    async def following(self, user_id: int, first: int, after: EdgeCursor | None) -> EdgePage:
        size = page_size(first, self._max_page_size)
        return await self._graph.following_page(user_id, size, after)

    async def who_to_follow(self, viewer: int, first: int) -> list[Suggestion]:
        size = page_size(first, self._max_page_size)
        return await self._graph.who_to_follow(viewer, size)
