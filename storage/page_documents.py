"""Everything a page of tweets shows, read from the documents Redis in one MGET (one per shard
on a cluster): the tweets, their engagement counts, their authors' profiles, and the viewer's
token version and account; and when asked, what the viewer did to the tweets (liked,
retweeted), read by the same call on one server (storage/lua/page_read.lua; on a cluster: sent
at the same time to the viewer's node).

A feed page on a cache hit then costs two round trips in all: the feed script, and this. It only
reads keys that storage/tweets.py, storage/tweet_counts.py, storage/likes.py and
storage/accounts.py own and write (and decodes them as they do); it writes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio.cluster import RedisCluster

from storage import lua
from storage.accounts import Profile, PublicProfile, profile_key, token_version_key
from storage.feeds import FeedRef
from storage.likes import ViewerEngagement, read_viewer_engagement, viewer_engagement
from storage.redis_clients import DocumentsRedis, mget, reply_bytes
from storage.tweet_counts import TweetCounts, counts_key, likes_key, retweets_key
from storage.tweets import Tweet, tweet_key


@dataclass(frozen=True)
class ViewerAccount:
    """The viewer's account as a token check needs it: whether it exists, its token version."""

    exists: bool
    token_version: int


@dataclass(frozen=True)
class PageDocuments:
    tweets: list[Tweet | None]  # in the order of the refs asked; tombstones included
    profiles: dict[int, PublicProfile]  # the authors (and the viewer) that have one
    viewer: ViewerAccount | None  # None: not asked
    counts: list[TweetCounts]  # in the order of the `counted` refs asked
    engagement: list[ViewerEngagement] | None  # the same order; None: not asked


class PageDocumentReader:
    def __init__(self, client: DocumentsRedis) -> None:
        self._redis = client
        self._page_read = lua.register(client, "page_read")

    async def read(
        self,
        refs: list[tuple[int, int]],
        user_ids: list[int],
        viewer_id: int | None,
        counted: list[tuple[int, int]] | None = None,
        engaged_by: int | None = None,
    ) -> PageDocuments:
        """The documents of (author id, tweet id) `refs`, the counts of the `counted` ones and
        the profiles of `user_ids`, with `viewer_id` that user's account state (one MGET), and
        with `engaged_by` what that user did to the `counted` ones (in the same round trip)."""
        counted = counted or []
        users = sorted(set(user_ids) | ({viewer_id} if viewer_id is not None else set()))
        keys = [tweet_key(a, t) for a, t in refs] + [counts_key(a, t) for a, t in counted]
        keys += [profile_key(u) for u in users]
        if viewer_id is not None:
            keys.append(token_version_key(viewer_id))
        engagement: list[ViewerEngagement] | None = None
        if engaged_by is None or not counted:
            raws = await mget(self._redis, keys)
            engagement = None if engaged_by is None else []
        else:
            raws, engagement = await self._with_engagement(keys, engaged_by, counted)
        tweets = [None if raw is None else Tweet.from_json(raw) for raw in raws[: len(refs)]]
        counts_end = len(refs) + len(counted)
        counts = [TweetCounts.decode(raw) for raw in raws[len(refs) : counts_end]]
        profile_raws = raws[counts_end : counts_end + len(users)]
        profiles = {
            user: Profile.from_json(raw).public()
            for user, raw in zip(users, profile_raws, strict=True)
            if raw is not None
        }
        viewer = None
        if viewer_id is not None:
            version = raws[-1]
            viewer = ViewerAccount(viewer_id in profiles, int(version or 0))
        return PageDocuments(tweets, profiles, viewer, counts, engagement)

    async def _with_engagement(
        self, keys: list[str], user_id: int, counted: list[tuple[int, int]]
    ) -> tuple[list[bytes | None], list[ViewerEngagement]]:
        """The MGET of `keys` and the user's engagement with `counted`: one script call on one
        server (a pipeline of the three reads cost the API more than the page's 120 extra
        fields); on a cluster (where an MGET spans nodes) the two sent at the same time."""
        refs = [FeedRef(tweet_id=t, author_id=a) for a, t in counted]
        if isinstance(self._redis, RedisCluster):
            return await asyncio.gather(
                mget(self._redis, keys), read_viewer_engagement(self._redis, user_id, refs)
            )
        documents, liked, retweeted = await self._page_read(
            keys=[*keys, likes_key(user_id), retweets_key(user_id)],
            args=[ref.member() for ref in refs],
        )
        raws = [None if raw is None else reply_bytes(raw) for raw in documents]
        return raws, [viewer_engagement(*state) for state in zip(liked, retweeted, strict=True)]
