"""Batched reads behind the API's per-request loaders: each answers for a whole batch of ids in
a constant number of round trips."""

from __future__ import annotations

from graph.port import FollowCounts, SocialGraph
from storage.accounts import AccountStore, PublicProfile
from storage.tweet_cache import TweetCache, TweetRef
from storage.tweets import Tweet, TweetStore


class Lookups:
    def __init__(
        self,
        *,
        accounts: AccountStore,
        tweets: TweetStore,
        tweet_cache: TweetCache,
        graph: SocialGraph,
    ) -> None:
        self._accounts = accounts
        self._tweets = tweets
        self._cache = tweet_cache
        self._graph = graph

    async def profiles(self, user_ids: list[int]) -> list[PublicProfile | None]:
        found = await self._accounts.profiles(user_ids)
        return [found.get(i) for i in user_ids]

    async def tweets(self, refs: list[TweetRef]) -> list[Tweet | None]:
        """Tweets (tombstones included) by (author, id): hot ones from the process cache, the
        rest in one round trip per shard."""
        cache = self._cache
        found = {ref: cache.get(ref) for ref in refs}
        missing = [ref for ref, tweet in found.items() if tweet is None]
        read_started_at = cache.now()
        for ref, tweet in zip(missing, await self._tweets.get_many(missing), strict=True):
            found[ref] = tweet
            if tweet is not None:
                cache.put(tweet, read_started_at)
        return [found[ref] for ref in refs]

    async def counts(self, user_ids: list[int]) -> list[FollowCounts]:
        found = await self._graph.counts(user_ids)
        return [found.get(i, FollowCounts(0, 0)) for i in user_ids]

    async def follows(self, viewer: int, user_ids: list[int]) -> list[bool]:
        """Whether `viewer` follows each of `user_ids` (one graph query)."""
        followed = await self._graph.following_among(viewer, user_ids)
        return [i in followed for i in user_ids]
