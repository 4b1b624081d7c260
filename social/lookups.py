"""Batched reads behind the API's per-request loaders: each answers for a whole batch of ids in
a constant number of round trips."""

from __future__ import annotations

from auth.tokens import Claims
from graph.port import FollowCounts, SocialGraph
from social.accounts import Accounts
from storage.accounts import AccountStore, PublicProfile
from storage.feeds import FeedRef
from storage.likes import LikeStore, ViewerEngagement
from storage.page_documents import PageDocumentReader
from storage.tweet_cache import TweetCache, TweetRef
from storage.tweet_counts import TweetCounters, TweetCounts
from storage.tweets import Tweet, TweetStore


class Lookups:
    def __init__(
        self,
        *,
        accounts: AccountStore,
        tweets: TweetStore,
        tweet_cache: TweetCache,
        graph: SocialGraph,
        pages: PageDocumentReader,
        counters: TweetCounters,
        likes: LikeStore,
    ) -> None:
        self._accounts = accounts
        self._tweets = tweets
        self._cache = tweet_cache
        self._graph = graph
        self._pages = pages
        self._counters = counters
        self._likes = likes

    async def profiles(self, user_ids: list[int]) -> list[PublicProfile | None]:
        found = await self._accounts.profiles(user_ids)
        return [found.get(i) for i in user_ids]

    async def tweets(self, refs: list[TweetRef]) -> list[Tweet | None]:
        """Tweets (tombstones included) by (author, id): hot ones from the process cache, the
        rest in one round trip per shard."""
        found, missing, read_started_at = self._cached(refs)
        self._remember(found, missing, await self._tweets.get_many(missing), read_started_at)
        return [found[ref] for ref in refs]

    async def page(
        self, refs: list[TweetRef], authenticating: Claims | None, engaged_by: int | None = None
    ) -> tuple[
        list[Tweet | None],
        dict[int, PublicProfile],
        list[TweetCounts],
        list[ViewerEngagement] | None,
    ]:
        """A page's tweets (as `tweets`) with their authors' profiles and their counts, with
        `authenticating` the check that the token still holds (BadCredentials if not), and with
        `engaged_by` what that user did to them (None if not asked): all in one round trip per
        shard."""
        found, missing, read_started_at = self._cached(refs)
        viewer = authenticating.user_id if authenticating is not None else None
        authors = [author for author, _ in refs]
        read = await self._pages.read(missing, authors, viewer, refs, engaged_by)
        if authenticating is not None and read.viewer is not None:
            Accounts.check_token(authenticating, read.viewer.exists, read.viewer.token_version)
        self._remember(found, missing, read.tweets, read_started_at)
        return [found[ref] for ref in refs], read.profiles, read.counts, read.engagement

    async def tweet_counts(self, refs: list[TweetRef]) -> list[TweetCounts]:
        """Engagement counts by (author, id): one round trip per shard."""
        return await self._counters.read(refs)

    async def viewer_engagement(self, viewer: int, refs: list[TweetRef]) -> list[ViewerEngagement]:
        """Whether `viewer` liked and retweeted each tweet: one call on the viewer's node."""
        return await self._likes.viewer_engagement(viewer, [FeedRef(t, a) for a, t in refs])

    def _cached(
        self, refs: list[TweetRef]
    ) -> tuple[dict[TweetRef, Tweet | None], list[TweetRef], float]:
        """What the process cache holds of `refs`, the refs it lacks, and the time to read
        them by (from before the read: see TweetCache.put)."""
        found = {ref: self._cache.get(ref) for ref in refs}
        missing = [ref for ref, tweet in found.items() if tweet is None]
        return found, missing, self._cache.now()

    def _remember(
        self,
        found: dict[TweetRef, Tweet | None],
        missing: list[TweetRef],
        read: list[Tweet | None],
        read_started_at: float,
    ) -> None:
        for ref, tweet in zip(missing, read, strict=True):
            found[ref] = tweet
            if tweet is not None:
                self._cache.put(tweet, read_started_at)

    async def counts(self, user_ids: list[int]) -> list[FollowCounts]:
        found = await self._graph.counts(user_ids)
        return [found.get(i, FollowCounts(0, 0)) for i in user_ids]

    async def follows(self, viewer: int, user_ids: list[int]) -> list[bool]:
        """Whether `viewer` follows each of `user_ids` (one graph query)."""
        followed = await self._graph.following_among(viewer, user_ids)
        return [i in followed for i in user_ids]
