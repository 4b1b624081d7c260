"""Building a home feed from scratch (the miss path): the followees' recent tweet ids from the
tweet shards, k-way merged, newest first."""

from __future__ import annotations

import heapq
import itertools

from storage.feeds import FeedRef
from storage.tweets import TweetStore


def merge_newest(streams: list[list[FeedRef]], limit: int) -> list[FeedRef]:
    """K-way merge of newest-first lists into one newest-first list of at most `limit` refs,
    without duplicates."""
    merged = heapq.merge(*streams, reverse=True)
    unique = (ref for ref, _ in itertools.groupby(merged))
    return list(itertools.islice(unique, limit))


async def gather_feed(
    tweets: TweetStore, author_ids: list[int], per_author: int, limit: int
) -> list[FeedRef]:
    """The newest `limit` refs among the newest `per_author` tweets of each author: one
    pipelined round trip per tweet shard (concurrent on a cluster), then a merge in memory."""
    recent = await tweets.recent_tweet_ids(author_ids, per_author)
    streams = [[FeedRef(t, author) for t in ids] for author, ids in recent.items()]
    return merge_newest(streams, limit)
