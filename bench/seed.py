"""A power-law follow graph with accounts and tweets, bulk-loaded into the real stores.

User 0 is the "top author", followed by TOP_AUDIENCE users. Every other user follows
FOLLOWS_PER_USER accounts drawn from a Zipf distribution over the POPULAR most popular users, so a
few accounts gather tens of thousands of followers and most have a handful. The POPULAR users
each get TWEETS_PER_AUTHOR tweets.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass

from graph.port import SocialGraph
from storage.accounts import AccountStore, Profile
from storage.tweets import Tweet, TweetStore

ID_BASE = 10**15  # user ids: ID_BASE + index
TWEET_ID_BASE = 10**17  # tweet ids: in time order, newer than any user id
CHUNK = 5_000


@dataclass(frozen=True)
class Shape:
    users: int = 110_000
    top_audience: int = 100_000
    follows_per_user: int = 8
    popular: int = 5_000
    zipf_exponent: float = 1.1
    tweets_per_author: int = 20


def user_id(index: int) -> int:
    return ID_BASE + index


def follow_edges(shape: Shape, rng: random.Random) -> list[tuple[int, int]]:
    """(follower index, followee index) pairs, without self-follows or repeats."""
    ranks = range(1, shape.popular)
    weights = list(itertools.accumulate(1 / r**shape.zipf_exponent for r in ranks))
    edges = {(follower, 0) for follower in range(1, shape.top_audience + 1)}
    for follower in range(1, shape.users):
        for followee in rng.choices(ranks, cum_weights=weights, k=shape.follows_per_user):
            if followee != follower:
                edges.add((follower, followee))
    return sorted(edges)


async def seed(
    shape: Shape, graph: SocialGraph, accounts: AccountStore, tweets: TweetStore
) -> dict[str, float]:
    """Load everything; returns timings (s) and counts."""
    rng = random.Random(42)
    started = time.perf_counter()
    users = [(user_id(i), f"u{i}") for i in range(shape.users)]
    for chunk in _chunks(users):
        await graph.bulk_create_users(chunk)
        await accounts.save_profiles([Profile(uid, name, name, "-", 1) for uid, name in chunk])
    edges = follow_edges(shape, rng)
    for chunk in _chunks(edges):
        await graph.bulk_follow([(user_id(a), user_id(b), 1) for a, b in chunk])
    graph_seconds = time.perf_counter() - started
    started = time.perf_counter()
    authored = [
        Tweet(TWEET_ID_BASE + n * shape.popular + author, user_id(author), f"tweet {n}", 1)
        for n in range(shape.tweets_per_author)
        for author in range(shape.popular)
    ]
    for chunk in _chunks(authored):
        await tweets.create_many(chunk)
    return {
        "users": shape.users,
        "follows": len(edges),
        "tweets": len(authored),
        "graph_seconds": graph_seconds,
        "tweet_seconds": time.perf_counter() - started,
    }


def _chunks(items: list) -> list[list]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
