"""Building a home feed from scratch (the miss path): the followees' recent tweet ids from the
tweet shards, k-way merged, newest first."""

from __future__ import annotations

import heapq
import itertools

from storage.feeds import FeedRef
from storage.tweets import TweetStore


def merge_newest(streams: list[list[FeedRef]], limit: int | None = None) -> list[FeedRef]:
    """K-way merge of newest-first lists into one newest-first list without duplicates, of at
    most `limit` refs (None: all)."""
    merged = heapq.merge(*streams, reverse=True)
    unique = (ref for ref, _ in itertools.groupby(merged))
    return list(itertools.islice(unique, limit))


async def gather_feed(tweets: TweetStore, author_ids: list[int], limit: int) -> list[FeedRef]:
    """Exactly the newest `limit` tweets of all these authors, without reading all their
    timelines: each round reads the next few ids of every author that may still have tweets
    newer than the current `limit`-th newest, doubling the few each round. A round is one
    pipelined round trip per shard; usually one or two rounds suffice."""
    found: dict[int, list[int]] = {author: [] for author in author_ids}
    active = list(author_ids)
    # Twice the fair share at first, so that usually one more (small) round settles it.
    per_author = max(1, -(-2 * limit // max(1, len(author_ids))))
    merged: list[FeedRef] = []
    while active:
        before = {a: found[a][-1] for a in active if found[a]}
        fetched = await tweets.recent_tweet_ids(active, per_author, before)
        for author, ids in fetched.items():
            found[author] += ids
        merged = merge_newest([[FeedRef(t, a) for t in ids] for a, ids in found.items()], limit)
        threshold = merged[-1] if len(merged) == limit else None
        active = [
            a
            for a, ids in fetched.items()
            if len(ids) == per_author and (threshold is None or FeedRef(ids[-1], a) > threshold)
        ]
        per_author *= 2
    return merged
