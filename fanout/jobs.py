"""The API's handle on background work: enqueue by intent, without knowing actor plumbing.

Dramatiq's enqueue is a blocking Redis call, so it runs in a thread off the event loop.
"""

from __future__ import annotations

import asyncio

from dramatiq.brokers.redis import RedisBroker

from fanout.actors import declare_actors


class Jobs:
    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._actors = declare_actors(broker)

    async def collect_unclaimed_account_later(
        self, user_id: int, username: str, delay_seconds: int
    ) -> None:
        actor = self._actors["collect_unclaimed_account"]
        await asyncio.to_thread(
            actor.send_with_options, args=(user_id, username), delay=delay_seconds * 1000
        )

    async def purge_tweet_media(self, author_id: int, tweet_id: int) -> None:
        actor = self._actors["purge_tweet_media"]
        await asyncio.to_thread(actor.send, author_id, tweet_id)

    async def collect_orphan_media_later(
        self, owner_id: int, media_id: int, delay_seconds: float
    ) -> None:
        actor = self._actors["collect_orphan_media"]
        await asyncio.to_thread(
            actor.send_with_options, args=(owner_id, media_id), delay=int(delay_seconds * 1000)
        )

    async def fan_out(self, author_id: int, tweet_id: int) -> None:
        """Queue delivery of a new tweet to its author's followers' feeds."""
        await asyncio.to_thread(self._actors["fan_out"].send, author_id, tweet_id, "push")

    async def retract(self, author_id: int, tweet_id: int) -> None:
        """Queue removal of a deleted tweet from its author's followers' feeds."""
        await asyncio.to_thread(self._actors["fan_out"].send, author_id, tweet_id, "unpush")

    async def reconcile(self, follower_id: int, followee_id: int) -> None:
        """Queue the clean-up of a follower's feed after an unfollow."""
        await asyncio.to_thread(self._actors["reconcile"].send, follower_id, followee_id)

    def close(self) -> None:
        self._broker.close()
