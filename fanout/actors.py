"""Actors: each declares its own retries, backoff and time limit next to its body.

Messages carry ids only. Every actor is idempotent: running a message twice, or after the work it
describes was finished another way, changes nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from fanout.planner import batches, celebrity_flag, live_event
from fanout.runtime import resources
from storage.feeds import FeedRef

PUSH, UNPUSH, REFLAG = "push", "unpush", "reflag"
STORE_WAIT_SECONDS = 0.02  # fan-out is enqueued before the tweet is stored: wait a moment
STORE_WAIT_TRIES = 5


class TweetNotStoredYet(Exception):
    """The tweet's document is not there (yet): retried briefly, then the message is dropped."""


async def _send(actor_name: str, *args: Any) -> None:
    """Enqueue another actor from inside an actor (the broker call blocks: run it in a thread)."""
    actor = dramatiq.get_broker().get_actor(actor_name)
    await asyncio.to_thread(actor.send, *args)


async def fan_out(author_id: int, tweet_id: int, action: str, after: int | None = None) -> None:
    """Deliver a new tweet (`push`), a deleted one's removal (`unpush`), or the news that the
    author's celebrity flag changed (`reflag`) to the author's followers: page the followers
    from the graph, one delivery message per batch.

    The first message of a push checks the tweet is stored and whether the author is (still) a
    celebrity, whose tweets are not pushed but merged at read time. A flag that changes makes
    every follower's cached followee set stale, so a `reflag` pass drops them. A page of
    FANOUT_PAGE_SIZE followers is handled per message; the next page is a new message, so a
    huge audience is shared by all workers and no message runs long.
    """
    stores = await resources()
    settings = stores.settings
    if after is None and action == PUSH:
        if not await _tweet_is_live(author_id, tweet_id):
            return
        celebrity, changed = await _update_celebrity_flag(author_id)
        if changed:
            await _send("fan_out", author_id, tweet_id, REFLAG)
        if celebrity:
            return
    page = await stores.graph.follower_ids_page(author_id, after, settings.fanout_page_size)
    for batch in batches(page, settings.fanout_batch_size):
        await _send("deliver", author_id, tweet_id, batch, action)
    if len(page) == settings.fanout_page_size:
        await _send("fan_out", author_id, tweet_id, action, page[-1])


async def _tweet_is_live(author_id: int, tweet_id: int) -> bool:
    """True once the document exists; False if it was deleted; raises if it never appears."""
    stores = await resources()
    for _ in range(STORE_WAIT_TRIES):
        [tweet] = await stores.tweets.get_many([(author_id, tweet_id)])
        if tweet is not None:
            return not tweet.deleted
        await asyncio.sleep(STORE_WAIT_SECONDS)
    raise TweetNotStoredYet(f"tweet {tweet_id} of {author_id}")


async def _update_celebrity_flag(author_id: int) -> tuple[bool, bool]:
    """Re-decide the author's celebrity flag from their follower count: (flag, changed)."""
    stores = await resources()
    settings = stores.settings
    status = await stores.graph.celebrity_status(author_id)
    if status is None:
        return False, False
    followers, flagged = status
    flag = celebrity_flag(
        followers, flagged, settings.celebrity_followers, settings.celebrity_hysteresis
    )
    if flag != flagged:
        await stores.graph.set_celebrity(author_id, flag)
    return flag, flag != flagged


async def deliver(author_id: int, tweet_id: int, follower_ids: list[int], action: str) -> None:
    """Push the tweet into (or remove it from) the existing feeds of one batch of followers,
    with one script call; online followers get a live event, once. Or drop their cached
    followee sets (`reflag`). Safe to repeat."""
    stores = await resources()
    ref = FeedRef(tweet_id=tweet_id, author_id=author_id)
    if action == PUSH:
        event = live_event("tweet", author_id, tweet_id)
        changed = await stores.feeds.push_to_feeds(ref, follower_ids, event)
        await stores.stats.record_batch(tweet_id, len(follower_ids), changed)
    elif action == UNPUSH:
        event = live_event("deleted", author_id, tweet_id)
        await stores.feeds.unpush_from_feeds(ref, follower_ids, event)
    else:
        await stores.feeds.invalidate_following_many(follower_ids)


async def reconcile(follower_id: int, followee_id: int) -> None:
    """After an unfollow: if the graph says the follow is really gone, remove the followee's
    tweets from the follower's feed. Re-reading the graph makes late or repeated runs safe, and
    the removal happens only if the follower's follow state is still the one the graph was read
    at: a re-follow between the check and the removal (which merges the tweets back) makes this
    run again, later, and find the follow."""
    stores = await resources()
    version = await stores.feeds.following_version(follower_id)
    if followee_id in await stores.graph.following_among(follower_id, [followee_id]):
        return
    if await stores.feeds.unmerge_from_feed(follower_id, followee_id, version) is None:
        raise dramatiq.Retry("the follow state changed during the check")


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
    """When an upload expires (`MEDIA_ORPHAN_HOURS`): delete it unless a tweet attached it, and
    in any case its upload object (S3 cannot revoke a presigned URL: a re-sent file goes here)."""
    stores = await resources()
    await stores.media.purge(owner_id, media_id, unless_attached=True)


ActorFn = Callable[..., Awaitable[Any]]

# Policy per actor (dramatiq options; times in ms). Backoff doubles from min to max.
ACTOR_OPTIONS: dict[ActorFn, dict[str, Any]] = {
    # Feed work must be fast to matter: short backoffs, short time limits.
    fan_out: {
        "queue_name": "fanout",
        "max_retries": 5,
        "min_backoff": 200,
        "max_backoff": 5_000,
        "time_limit": 60_000,
    },
    deliver: {
        "queue_name": "fanout",
        "max_retries": 10,
        "min_backoff": 100,
        "max_backoff": 10_000,
        "time_limit": 30_000,
    },
    reconcile: {
        "queue_name": "feeds",
        "max_retries": 10,
        "min_backoff": 1_000,
        "max_backoff": 60_000,
        "time_limit": 30_000,
    },
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
