"""The job queue (`social.ports.JobQueue`) on Dramatiq: enqueue by intent, without knowing
actor plumbing. Dramatiq's enqueue is a blocking Redis call, so it runs in a thread off the
event loop."""

from __future__ import annotations

import asyncio

from dramatiq.brokers.redis import RedisBroker

from fanout.actors import Actors
from social.ports import FanoutAction


class Jobs:
    def __init__(self, broker: RedisBroker, actors: Actors) -> None:
        self._broker = broker
        self._actors = actors

    async def fan_out(
        self, author_id: int, tweet_id: int, action: FanoutAction, after: int | None = None
    ) -> None:
        args = (author_id, tweet_id, action.value) + (() if after is None else (after,))
        await asyncio.to_thread(self._actors.fan_out.send, *args)

    async def deliver(
        self, author_id: int, tweet_id: int, follower_ids: list[int], action: FanoutAction
    ) -> None:
        actor = self._actors.deliver
        await asyncio.to_thread(actor.send, author_id, tweet_id, follower_ids, action.value)

    async def reconcile(self, follower_id: int, followee_id: int) -> None:
        await asyncio.to_thread(self._actors.reconcile.send, follower_id, followee_id)

    async def collect_unclaimed_account_later(
        self, user_id: int, username: str, delay_seconds: int
    ) -> None:
        actor = self._actors.collect_unclaimed_account
        await asyncio.to_thread(
            actor.send_with_options, args=(user_id, username), delay=delay_seconds * 1000
        )

    async def purge_tweet_media(self, author_id: int, tweet_id: int) -> None:
        await asyncio.to_thread(self._actors.purge_tweet_media.send, author_id, tweet_id)

    async def collect_orphan_media_later(
        self, owner_id: int, media_id: int, delay_seconds: float
    ) -> None:
        actor = self._actors.collect_orphan_media
        await asyncio.to_thread(
            actor.send_with_options, args=(owner_id, media_id), delay=int(delay_seconds * 1000)
        )

    async def process_video(self, owner_id: int, media_id: int) -> None:
        await asyncio.to_thread(self._actors.process_video.send, owner_id, media_id)

    def close(self) -> None:
        self._broker.close()
