"""Each viewer's followees, cached for read-time filtering, in the feed Redis.

Keys (this module is their only writer); `{V}` is the viewer id:
  followees:{V}         set of the ids V follows, each as 8 big-endian bytes (as feed members
                        carry authors, so the feed's page script checks its authors in place),
                        plus 8 zero bytes, so an empty set still exists; for filtering at read
                        time. Dropped on every follow/unfollow of V; lives FOLLOWING_TTL_SECONDS.
  following_celebs:{V}  the celebrities among them (decimal, plus 0), merged into V's pages at
                        read time. Written and dropped together with followees:{V}.
  following_ver:{V}     counter bumped by every follow/unfollow of V, before a follow merges
                        entries in: a rebuild of followees:{V} from the graph is written, and
                        feed entries judged unfollowed are removed (storage/feeds.py), only if
                        no follow happened since the decision's inputs were read.
storage/feeds.py reads all three (FeedCache.page, the if-unchanged scripts) but never writes
them.
"""

from __future__ import annotations

from redis.typing import EncodableT

from storage import lua
from storage.redis_clients import FeedRedis, reply_bytes

FOLLOWING_TTL_SECONDS = 3600


ID_BYTES = 8
_EMPTY = b"\x00" * ID_BYTES  # keeps an empty set in existence (no user has id 0)


def followee_member(user_id: int) -> bytes:
    return user_id.to_bytes(ID_BYTES, "big")


def followees_key(viewer_id: int) -> str:
    return f"followees:{{{viewer_id}}}"


def following_celebs_key(viewer_id: int) -> str:
    return f"following_celebs:{{{viewer_id}}}"


def following_version_key(viewer_id: int) -> str:
    return f"following_ver:{{{viewer_id}}}"


class FolloweeSets:
    def __init__(self, client: FeedRedis) -> None:
        self._redis = client
        self._fill_following = lua.register(client, "fill_following")

    async def follows(self, viewer_id: int, user_ids: list[int]) -> list[bool] | None:
        """Whether the viewer follows each id, from the cached set; None if it is not cached."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(followees_key(viewer_id))
            pipe.smismember(
                followees_key(viewer_id), [followee_member(u) for u in user_ids] or [_EMPTY]
            )
            cached, flags = await pipe.execute()
        return [bool(f) for f in flags][: len(user_ids)] if cached else None

    async def following_version(self, viewer_id: int) -> str:
        """The viewer's follow-state version ("0" before any follow/unfollow): read it before
        the inputs of a decision that `fill_following` or a guarded feed removal applies."""
        return reply_bytes(await self._redis.get(following_version_key(viewer_id)) or b"0").decode()

    async def fill_following(
        self, viewer_id: int, user_ids: list[int], celebrity_ids: list[int], version: str
    ) -> bool:
        """Cache the followee set read from the graph, unless a follow changed it since
        `version` was read. True if written."""
        keys = [
            followees_key(viewer_id),
            following_celebs_key(viewer_id),
            following_version_key(viewer_id),
        ]
        args: list[EncodableT] = [
            version,
            FOLLOWING_TTL_SECONDS,
            _EMPTY,
            len(user_ids),
            *(followee_member(u) for u in user_ids),
            *celebrity_ids,
        ]
        return bool(await self._fill_following(keys=keys, args=args))

    async def invalidate_following(self, viewer_id: int) -> None:
        """Call after every follow/unfollow of the viewer, once the graph has changed."""
        await self.invalidate_following_many([viewer_id])

    async def invalidate_following_many(self, viewer_ids: list[int]) -> None:
        """Drop the cached followee sets of many viewers and bump their versions (one round
        trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for viewer_id in viewer_ids:
                pipe.incr(following_version_key(viewer_id))
                pipe.delete(followees_key(viewer_id), following_celebs_key(viewer_id))
            await pipe.execute()
