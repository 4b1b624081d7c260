"""The lock that lets one process at a time rebuild a viewer's feed, in the feed Redis.

Keys (this module is their only writer); `{V}` is the viewer id:
  lock:feed:{V}      the holder's token, while one process rebuilds V's feed. Lives
                     REBUILD_LOCK_MS, so a holder that dies frees it; only the holder's token
                     releases it early.
"""

from __future__ import annotations

from storage import lua
from storage.redis_clients import FeedRedis

REBUILD_LOCK_MS = 10_000


def lock_key(viewer_id: int) -> str:
    return f"lock:feed:{{{viewer_id}}}"


class RebuildLocks:
    def __init__(self, client: FeedRedis) -> None:
        self._redis = client
        self._unlock = lua.register(client, "unlock")

    async def try_lock(self, viewer_id: int, token: str) -> bool:
        """Take V's rebuild lock for REBUILD_LOCK_MS under `token` (unique per attempt, e.g.
        `secrets.token_hex(8)`). False if another process holds it."""
        return bool(await self._redis.set(lock_key(viewer_id), token, nx=True, px=REBUILD_LOCK_MS))

    async def unlock(self, viewer_id: int, token: str) -> bool:
        """Release the lock if it still holds `token`. False if it had expired (and perhaps been
        taken by another process, whose lock stays)."""
        return bool(await self._unlock(keys=[lock_key(viewer_id)], args=[token]))
