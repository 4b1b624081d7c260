"""Actors: each declares its queue, retries, backoff and time limit beside its name; its body
runs the domain's job (`social.fanout.FanOut`), which holds the rules.

Messages carry ids only, and every job is idempotent. Actors are declared on a broker with a
provider of the `FanOut` they run, built lazily on the worker's event loop (where its clients must
live); the API declares them only to send messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from fanout.queues import VIDEO_QUEUES
from social.fanout import FanOut, FollowStateMoved, VideoHeldElsewhere
from social.ports import FanoutAction

FanOutProvider = Callable[[], Awaitable[FanOut]]

# Feed work must be fast to matter: short backoffs, short time limits. Times in ms; the backoff
# doubles from min to max.
_FEED_PASS = {
    "queue_name": "fanout",
    "max_retries": 5,
    "min_backoff": 200,
    "max_backoff": 5_000,
    "time_limit": 60_000,
}
_FEED_BATCH = {
    "queue_name": "fanout",
    "max_retries": 10,
    "min_backoff": 100,
    "max_backoff": 10_000,
    "time_limit": 30_000,
}
_FEED_REPAIR = {
    "queue_name": "feeds",
    "max_retries": 10,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
    "time_limit": 30_000,
}
_ACCOUNTS = {
    "queue_name": "accounts",
    "max_retries": 10,
    "min_backoff": 1_000,
    "max_backoff": 60_000,
    "time_limit": 30_000,
}
_MEDIA = {
    "queue_name": "media",
    "max_retries": 20,
    "min_backoff": 1_000,
    "max_backoff": 300_000,
    "time_limit": 60_000,
}

# Video processing has a queue of its own, consumed by its own worker processes (README), so a
# long transcode never holds a thread that fan-out needs. The sandbox bounds each run with
# VIDEO_PROCESS_TIMEOUT_SECONDS; the time limit here is only a backstop above any sane value.
# A worker that dies mid-run: its message is redelivered once its heartbeats stop, and the job
# waits out the dead worker's lease (VIDEO_LEASE_SECONDS) by retrying with these backoffs.
_VIDEO = {
    "queue_name": VIDEO_QUEUES[0],
    "max_retries": 30,
    "min_backoff": 1_000,
    "max_backoff": 30_000,
    "time_limit": 3 * 3600_000,
}


@dataclass(frozen=True)
class Actors:
    fan_out: dramatiq.Actor[..., None]
    deliver: dramatiq.Actor[..., None]
    reconcile: dramatiq.Actor[..., None]
    collect_unclaimed_account: dramatiq.Actor[..., None]
    purge_tweet_media: dramatiq.Actor[..., None]
    collect_orphan_media: dramatiq.Actor[..., None]
    process_video: dramatiq.Actor[..., None]


def declare_actors(broker: RedisBroker, jobs: FanOutProvider) -> Actors:
    """Declare every actor on `broker`, each running its job on the `FanOut` from `jobs`."""

    def actor(options: dict[str, Any]) -> Callable[[Callable[..., Any]], dramatiq.Actor[Any, Any]]:
        return dramatiq.actor(broker=broker, **options)

    @actor(_FEED_PASS)
    async def fan_out(author_id: int, tweet_id: int, action: str, after: int | None = None) -> None:
        await (await jobs()).fan_out(author_id, tweet_id, FanoutAction(action), after)

    @actor(_FEED_BATCH)
    async def deliver(author_id: int, tweet_id: int, follower_ids: list[int], action: str) -> None:
        await (await jobs()).deliver(author_id, tweet_id, follower_ids, FanoutAction(action))

    @actor(_FEED_REPAIR)
    async def reconcile(follower_id: int, followee_id: int) -> None:
        try:
            await (await jobs()).reconcile(follower_id, followee_id)
        except FollowStateMoved as exc:
            raise dramatiq.Retry(str(exc)) from None  # expected: not logged as an error

    @actor(_ACCOUNTS)
    async def collect_unclaimed_account(user_id: int, username: str) -> None:
        await (await jobs()).collect_unclaimed_account(user_id, username)

    @actor(_MEDIA)
    async def purge_tweet_media(author_id: int, tweet_id: int) -> None:
        await (await jobs()).purge_tweet_media(author_id, tweet_id)

    @actor(_MEDIA)
    async def collect_orphan_media(owner_id: int, media_id: int) -> None:
        await (await jobs()).collect_orphan_media(owner_id, media_id)

    @actor(_VIDEO)
    async def process_video(owner_id: int, media_id: int) -> None:
        try:
            await (await jobs()).process_video(owner_id, media_id)
        except VideoHeldElsewhere as exc:
            raise dramatiq.Retry(str(exc)) from None  # expected: not logged as an error

    return Actors(
        fan_out=fan_out,
        deliver=deliver,
        reconcile=reconcile,
        collect_unclaimed_account=collect_unclaimed_account,
        purge_tweet_media=purge_tweet_media,
        collect_orphan_media=collect_orphan_media,
        process_video=process_video,
    )
