"""Actors: each declares its own retries, backoff and time limit next to its body.

Messages carry ids only. Every actor is idempotent: running a message twice, or after the work it
describes was finished another way, changes nothing more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from fanout.runtime import resources


async def collect_unclaimed_account(user_id: int, username: str) -> None:
    """Remove the profile and graph node of a sign-up that never claimed its username.

    Enqueued (delayed by `SIGNUP_CLAIM_GRACE_SECONDS`) before a sign-up writes anything, so a
    sign-up that crashes or loses the name race leaves nothing behind. A completed sign-up owns
    the name, and then this does nothing.
    """
    stores = await resources()
    if await stores.accounts.owner_of(username) == user_id:
        return
    await stores.graph.delete_user(user_id)
    await stores.accounts.delete_profile(user_id)


async def purge_tweet_media(author_id: int, tweet_id: int) -> None:
    """Delete the objects and records of a deleted tweet's media. A live tweet is left alone."""
    stores = await resources()
    [tweet] = await stores.tweets.get_many([(author_id, tweet_id)])
    if tweet is None or not tweet.deleted:
        return
    for item in tweet.media:
        await stores.media.purge(author_id, item.media_id, unless_attached=False)


async def collect_orphan_media(owner_id: int, media_id: int) -> None:
    """Delete an upload that no tweet attached within `MEDIA_ORPHAN_HOURS`."""
    stores = await resources()
    await stores.media.purge(owner_id, media_id, unless_attached=True)


ActorFn = Callable[..., Awaitable[Any]]

# Policy per actor (dramatiq options; times in ms). Backoff doubles from min to max.
ACTOR_OPTIONS: dict[ActorFn, dict[str, Any]] = {
    collect_unclaimed_account: {
        "queue_name": "accounts",
        "max_retries": 10,
        "min_backoff": 1_000,
        "max_backoff": 60_000,
        "time_limit": 30_000,
    },
    purge_tweet_media: {
        "queue_name": "media",
        "max_retries": 20,
        "min_backoff": 1_000,
        "max_backoff": 300_000,
        "time_limit": 60_000,
    },
    collect_orphan_media: {
        "queue_name": "media",
        "max_retries": 20,
        "min_backoff": 1_000,
        "max_backoff": 300_000,
        "time_limit": 60_000,
    },
}


def declare_actors(broker: RedisBroker) -> dict[str, dramatiq.Actor]:
    """Declare every actor on `broker`; returns them by name."""
    return {
        fn.__name__: dramatiq.actor(fn, broker=broker, **options)
        for fn, options in ACTOR_OPTIONS.items()
    }
