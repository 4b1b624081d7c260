"""Who is live: presence, live-connection slots and the live channels, in the feed Redis.

Keys (this module is their only writer); `{V}` is the viewer id:
  presence:{V}       exists while V has a live subscription on some API process (heartbeat TTL);
                     fan-out publishes live events only for these viewers (storage/feeds.py
                     reads it in its push scripts).
  live_slots:{V}     sorted set: V's WebSocket connections on every API process, scored by
                     when their heartbeat lapses (ms); bounds how many one user may hold.
Pub/sub channels (named here only; sharded pub/sub on a cluster, storage/pubsub.py):
  live:{V}           V's live feed events (published by the push scripts of storage/feeds.py).
                     It hashes to V's slot, so on a cluster the script that pushes into V's feed
                     publishes on V's node.
  live:{hub}         every API process listens: revocations (storage/live_hub.py). One fixed
                     slot: on a cluster, one node carries it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.typing import EncodableT

from storage import lua
from storage.redis_clients import FeedRedis

_LIVE_PREFIX = "live:{"
HUB_CHANNEL = f"{_LIVE_PREFIX}hub}}"  # always subscribed by the live hub; carries revocations


def presence_key(viewer_id: int) -> str:
    return f"presence:{{{viewer_id}}}"


def live_slots_key(viewer_id: int) -> str:
    return f"live_slots:{{{viewer_id}}}"


def live_channel(viewer_id: int) -> str:
    """The channel of one viewer's live feed events."""
    return f"{_LIVE_PREFIX}{viewer_id}}}"


def viewer_of_channel(channel: str) -> int:
    """The viewer whose `live_channel` this is (not for HUB_CHANNEL)."""
    return int(channel.removeprefix(_LIVE_PREFIX).removesuffix("}"))


class Presence:
    def __init__(self, client: FeedRedis) -> None:
        self._redis = client
        self._claim_slot = lua.register(client, "claim_slot")

    async def mark_online(self, viewer_id: int, ttl_seconds: int) -> None:
        await self.mark_online_many([viewer_id], ttl_seconds)

    async def mark_online_many(
        self, viewer_ids: list[int], ttl_seconds: int, slots: Sequence[tuple[int, str]] = ()
    ) -> None:
        """Refresh the presence of these viewers and the lapse time of these live slots
        (viewer id, slot), for `ttl_seconds`: one round trip."""
        lapse_ms = int(time.time() * 1000) + ttl_seconds * 1000
        async with self._redis.pipeline(transaction=False) as pipe:
            for viewer_id in viewer_ids:
                pipe.set(presence_key(viewer_id), 1, ex=ttl_seconds)
            for viewer_id, slot in slots:
                pipe.zadd(live_slots_key(viewer_id), {slot: lapse_ms}, xx=True)
                pipe.expire(live_slots_key(viewer_id), ttl_seconds)
            await pipe.execute()

    async def claim_live_slot(
        self, viewer_id: int, slot: str, max_slots: int, ttl_seconds: int
    ) -> bool:
        """Take one of the viewer's `max_slots` live-subscription slots; False if all are held
        (by live subscriptions whose heartbeat has not lapsed)."""
        args: list[EncodableT] = [int(time.time() * 1000), ttl_seconds * 1000, max_slots, slot]
        return bool(await self._claim_slot(keys=[live_slots_key(viewer_id)], args=args))

    async def release_live_slot(self, viewer_id: int, slot: str) -> None:
        await self._redis.zrem(live_slots_key(viewer_id), slot)
