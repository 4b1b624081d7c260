"""The replies of each tweet, listed with the tweet they answer.

Keys (this module is their only writer); `{A}` is the author id of the tweet answered:
  replies:{A}:<T>   sorted set of the replies to tweet T of author A: members of 16 bytes (the
                    reply's tweet id then its author id, big-endian: storage/feeds.py
                    `FeedRef.member()`), score 0, so ZRANGE BYLEX orders them by time and the
                    oldest comes first, as a conversation is read. Ids are never scores (53 bits).
Placement: with the parent (its `{A}` slot, beside `tweet:{A}:<T>` and `counts:{A}:<T>`), not
with the repliers: the list is read as a whole by one reader of one tweet (its detail view), so
one node answers a page in one command; the replies themselves stay on their authors' shards
(a reply is a tweet of its author's, in its author's timeline). A reply is listed here after it
is stored (a second command, on another node): a crash between the two leaves a reply that shows
in feeds and timelines but not under its parent; `add` and `remove` report whether they changed
the list, so the replies counter moves exactly once per reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.redis_clients import DocumentsRedis, reply_bytes
from storage.tweets import TweetId

ID_BYTES = 8


def replies_key(author_id: int, tweet_id: int) -> str:
    return f"replies:{{{author_id}}}:{tweet_id}"


def ref_member(ref: TweetId) -> bytes:
    """A (author id, tweet id) ref as a 16-byte member: tweet id, then author id."""
    author_id, tweet_id = ref
    return tweet_id.to_bytes(ID_BYTES, "big") + author_id.to_bytes(ID_BYTES, "big")


def member_ref(raw: bytes) -> TweetId:
    return int.from_bytes(raw[ID_BYTES:], "big"), int.from_bytes(raw[:ID_BYTES], "big")


@dataclass(frozen=True)
class RepliesPage:
    replies: list[TweetId] = field(default_factory=list)  # (author id, tweet id), oldest first
    has_next_page: bool = False


class Conversations:
    def __init__(self, client: DocumentsRedis) -> None:
        self._redis = client

    async def add_reply(self, parent: TweetId, reply: TweetId) -> bool:
        """List `reply` under `parent`; True if it was not listed yet (idempotent)."""
        return bool(await self._redis.zadd(replies_key(*parent), {ref_member(reply): 0}))

    async def remove_reply(self, parent: TweetId, reply: TweetId) -> bool:
        """Unlist `reply`; True if it was listed (idempotent)."""
        return bool(await self._redis.zrem(replies_key(*parent), ref_member(reply)))

    async def replies_page(self, parent: TweetId, first: int, after: TweetId | None) -> RepliesPage:
        """Up to `first` replies to `parent`, oldest first, strictly newer than `after`."""
        start = b"-" if after is None else b"(" + ref_member(after)
        members = await self._redis.zrange(
            replies_key(*parent), start, b"+", bylex=True, offset=0, num=first + 1
        )
        refs = [member_ref(reply_bytes(raw)) for raw in members]
        return RepliesPage(replies=refs[:first], has_next_page=len(refs) > first)
