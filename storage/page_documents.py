"""Everything a page of tweets shows, read from the documents Redis in one MGET (one per shard
on a cluster): the tweets, their engagement counts, their authors' profiles, and the viewer's
token version and account.

A feed page on a cache hit then costs two round trips in all: the feed script, and this. It only
reads keys that storage/tweets.py, storage/tweet_counts.py and storage/accounts.py own and
write (and decodes them as they do); it writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.accounts import Profile, PublicProfile, profile_key, token_version_key
from storage.redis_clients import DocumentsRedis, mget
from storage.tweet_counts import TweetCounts, counts_key
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


class PageDocumentReader:
    def __init__(self, client: DocumentsRedis) -> None:
        self._redis = client

    async def read(
        self,
        refs: list[tuple[int, int]],
        user_ids: list[int],
        viewer_id: int | None,
        counted: list[tuple[int, int]] | None = None,
    ) -> PageDocuments:
        """The documents of (author id, tweet id) `refs`, the counts of the `counted` ones and
        the profiles of `user_ids`, and with `viewer_id` that user's account state: one MGET."""
        counted = counted or []
        users = sorted(set(user_ids) | ({viewer_id} if viewer_id is not None else set()))
        keys = [tweet_key(a, t) for a, t in refs] + [counts_key(a, t) for a, t in counted]
        keys += [profile_key(u) for u in users]
        if viewer_id is not None:
            keys.append(token_version_key(viewer_id))
        raws = await mget(self._redis, keys)
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
        return PageDocuments(tweets, profiles, viewer, counts)
