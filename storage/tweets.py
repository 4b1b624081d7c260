"""Tweet documents and user timelines, sharded by author.

Keys (this module is their only writer); `{A}` is the author id as a hash tag, so every key of one
author sits in one slot, on one node of a cluster, and every multi-key step below is one script:
  tweet:{A}:<id>        JSON document; a deleted tweet keeps its key as a tombstone
                        (`deleted: true`, text removed) so no retry can resurrect it.
  timeline:{A}          sorted set of the author's tweet ids, newest first. Members are 8-byte
                        big-endian ids with score 0, ordered by ZRANGE BYLEX: a score is a double
                        with 53 bits, and 64-bit ids that differ in their low bits would tie.
  idem:{A}:<sha256>     tweet id created under a client's idempotency key (expires).
A document may name other tweets as (author id, tweet id) refs: `in_reply_to` (the parent),
`conversation` (the root of the thread; None on a root), `quote_of` and `retweet_of` (a retweet
is a tweet of the retweeter's, without text, naming the original). Documents written before
these fields existed load with them None. The engagement keys that go with them (replies lists,
retweet records, counts) are storage/conversations.py, storage/retweets.py and
storage/tweet_counts.py.
Media records (`media:{A}:<id>`, owned by storage/media.py) are marked attached by the same
script that stores the tweet (storage/lua/tweet_create.lua), so a media item can never be
attached twice.

Durability: `create_durably` runs the script and then `WAIT <replicas> <timeout>` on the same
connection of the node that owns the author's slot (Redis counts acknowledgements of the writes
made by the connection that asks), and reports how many replicas confirmed; `abandon` undoes a
tweet that was not confirmed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import cast

import redis.exceptions
from redis.asyncio.cluster import PipelineCommand, RedisCluster
from redis.typing import EncodableT

from storage import lua
from storage.redis_clients import (
    DocumentsRedis,
    mget,
    node_of,
    refresh_slot_map,
    reply_bytes,
)

ID_BYTES = 8


@dataclass(frozen=True)
class MediaItem:
    media_id: int
    url: str
    width: int
    height: int
    content_type: str
    poster_url: str | None = None  # a video's poster image
    duration_ms: int | None = None  # a video's length


TweetId = tuple[int, int]  # (author id, tweet id): where a tweet lives and which it is


def _ref(raw: list[int] | None) -> TweetId | None:
    return None if raw is None else (int(raw[0]), int(raw[1]))


@dataclass(frozen=True)
class Tweet:
    tweet_id: int
    author_id: int
    text: str
    created_at_ms: int
    mentions: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    media: tuple[MediaItem, ...] = ()
    deleted: bool = False
    in_reply_to: TweetId | None = None
    conversation: TweetId | None = None
    quote_of: TweetId | None = None
    retweet_of: TweetId | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes) -> Tweet:
        data = json.loads(raw)
        return cls(
            tweet_id=data["tweet_id"],
            author_id=data["author_id"],
            text=data["text"],
            created_at_ms=data["created_at_ms"],
            mentions=tuple(data["mentions"]),
            hashtags=tuple(data["hashtags"]),
            media=tuple(MediaItem(**item) for item in data["media"]),
            deleted=data["deleted"],
            in_reply_to=_ref(data.get("in_reply_to")),
            conversation=_ref(data.get("conversation")),
            quote_of=_ref(data.get("quote_of")),
            retweet_of=_ref(data.get("retweet_of")),
        )

    def tombstone(self) -> Tweet:
        """What stays of a deleted tweet: no text; the media refs, for their clean-up job; the
        refs to other tweets, so a deletion's clean-up knows what it answered or retweeted."""
        return replace(self, text="", mentions=(), hashtags=(), deleted=True)


@dataclass(frozen=True)
class TimelinePage:
    tweet_ids: list[int] = field(default_factory=list)
    has_next_page: bool = False


class MediaNotAttachable(Exception):
    """A media item is not in the `published` state (unknown, unverified, or already attached).
    `media_key` names the first such item."""

    def __init__(self, media_key: str) -> None:
        super().__init__(f"media {media_key} is not attachable")
        self.media_key = media_key


@dataclass(frozen=True)
class Created:
    """What `create_durably` did: the id of the tweet that exists for the request (an earlier
    one for a repeated idempotency key) and how many replicas confirmed the write in time."""

    tweet_id: int
    replicas_acked: int


def tweet_key(author_id: int, tweet_id: int) -> str:
    return f"tweet:{{{author_id}}}:{tweet_id}"


def timeline_key(author_id: int) -> str:
    return f"timeline:{{{author_id}}}"


def idempotency_key(author_id: int, client_key: str) -> str:
    digest = hashlib.sha256(client_key.encode()).hexdigest()[:32]
    return f"idem:{{{author_id}}}:{digest}"


def member(tweet_id: int) -> bytes:
    return tweet_id.to_bytes(ID_BYTES, "big")


# Replies of a cluster node that refused the call because it does not own the slot (any more):
# the script did not run there, so it is safe to send again to the owner.
_NOT_RUN = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)


def _media_error(error: redis.exceptions.ResponseError) -> MediaNotAttachable | None:
    """The script's refusal 'MEDIA_NOT_ATTACHABLE <key>' as our exception; None if it is not."""
    reason, *details = str(error).split() or [""]
    return MediaNotAttachable(details[0]) if reason == "MEDIA_NOT_ATTACHABLE" else None


class TweetStore:
    def __init__(self, client: DocumentsRedis, *, idempotency_ttl_seconds: int) -> None:
        self._redis = client
        self._idempotency_ttl = idempotency_ttl_seconds
        self._create = lua.register(client, "tweet_create")
        self._tombstone = lua.register(client, "tweet_tombstone")
        self._abandon = lua.register(client, "tweet_abandon")

    def _create_call(
        self, tweet: Tweet, client_key: str | None, media_keys: list[str]
    ) -> tuple[list[str], list[EncodableT]]:
        keys = [
            tweet_key(tweet.author_id, tweet.tweet_id),
            timeline_key(tweet.author_id),
            idempotency_key(tweet.author_id, client_key or ""),
            *media_keys,
        ]
        args: list[EncodableT] = [
            tweet.to_json(),
            member(tweet.tweet_id),
            self._idempotency_ttl,
            tweet.tweet_id,
            "1" if client_key else "0",
            tweet.tombstone().to_json(),
        ]
        return keys, args

    async def create(self, tweet: Tweet, client_key: str | None, media_keys: list[str]) -> int:
        """Store the document, add it to the timeline and attach its media, atomically.

        `client_key` is the caller's optional idempotency key. Returns the id of the stored
        tweet: an earlier tweet's id if the key was used before. Raises MediaNotAttachable.
        """
        keys, args = self._create_call(tweet, client_key, media_keys)
        try:
            return int(await self._create(keys=keys, args=args))
        except redis.exceptions.ResponseError as exc:
            refused = _media_error(exc)
            if refused is None:
                raise
            raise refused from exc

    async def create_durably(
        self,
        tweet: Tweet,
        client_key: str | None,
        media_keys: list[str],
        *,
        replicas: int,
        timeout_ms: int,
    ) -> Created:
        """`create`, then `WAIT replicas timeout_ms` on the same connection to the node that
        owns the author's slot (one round trip): how many of its replicas acknowledged the
        write within the timeout (WAIT waits at most `timeout_ms` and never undoes the write).
        On a cluster whose slot map is stale (the node refused the keys, so the script did not
        run) the pair is resent to the new owner, up to 3 tries. Raises MediaNotAttachable."""
        keys, args = self._create_call(tweet, client_key, media_keys)
        for attempt in range(3):
            stored, acked = await self._script_then_wait(keys, args, replicas, timeout_ms)
            if isinstance(stored, _NOT_RUN) and attempt < 2:
                assert isinstance(self._redis, RedisCluster)
                await refresh_slot_map(self._redis)
                continue
            if isinstance(stored, redis.exceptions.ResponseError):
                refused = _media_error(stored)
                raise stored if refused is None else refused
            for reply in (stored, acked):
                if isinstance(reply, Exception):
                    raise reply
            return Created(tweet_id=int(cast(bytes, stored)), replicas_acked=int(cast(int, acked)))
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def _script_then_wait(
        self,
        keys: list[str],
        args: list[EncodableT],
        replicas: int,
        timeout_ms: int,
    ) -> list[object]:
        """[script reply, WAIT reply] sent as one pipeline on one connection (WAIT counts the
        acknowledgements of that connection's own writes, so it must not run on another
        pooled connection). Each reply may be an exception. EVAL, not EVALSHA: a NOSCRIPT
        answer would cost a whole WAIT before the retry; the server caches the compiled script
        by its hash either way, so the price is ~1 KB more on the wire."""
        script: list[EncodableT] = ["EVAL", lua.source("tweet_create"), len(keys), *keys, *args]
        wait: list[EncodableT] = ["WAIT", replicas, timeout_ms]
        if isinstance(self._redis, RedisCluster):
            await self._redis.initialize()
            node = node_of(self._redis, keys[0])
            commands = [PipelineCommand(0, *script), PipelineCommand(1, *wait)]
            try:
                await node.execute_pipeline(commands)
            except redis.exceptions.RedisError as exc:  # the node is gone
                return [exc, exc]
            return [command.result for command in commands]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.execute_command(*script)
            pipe.execute_command(*wait)
            results: list[object] = await pipe.execute(raise_on_error=False)
            return results

    async def abandon(self, tweet: Tweet, client_key: str | None, media_keys: list[str]) -> bool:
        """Undo a stored tweet that was never acknowledged: tombstone it (fan-out drops it; no
        retry can resurrect it), drop it from the timeline, free its idempotency key (a retry
        with the same key posts afresh) and give back its media (attachable again). True if it
        was live."""
        keys = [
            tweet_key(tweet.author_id, tweet.tweet_id),
            timeline_key(tweet.author_id),
            idempotency_key(tweet.author_id, client_key or ""),
            *media_keys,
        ]
        args: list[EncodableT] = [
            tweet.tombstone().to_json(),
            member(tweet.tweet_id),
            tweet.tweet_id,
            "1" if client_key else "0",
        ]
        return bool(await self._abandon(keys=keys, args=args))

    async def create_many(self, tweets: list[Tweet]) -> None:
        """Store many tweets without media or idempotency keys, pipelined (seeding); each one
        is still its own atomic script call on its author's shard."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for tweet in tweets:
                keys = [
                    tweet_key(tweet.author_id, tweet.tweet_id),
                    timeline_key(tweet.author_id),
                    idempotency_key(tweet.author_id, ""),
                ]
                args: list[EncodableT] = [
                    tweet.to_json(),
                    member(tweet.tweet_id),
                    0,
                    tweet.tweet_id,
                    "0",
                ]
                # redis-py's AsyncScript queues into a pipeline (it checks for one) but its
                # `client` parameter is typed for clients only.
                await self._create(keys=keys, args=args, client=pipe)  # type: ignore[arg-type]
            await pipe.execute()

    async def earlier_tweet(self, author_id: int, client_key: str) -> int | None:
        """The tweet id already created under this idempotency key, if any."""
        raw = await self._redis.get(idempotency_key(author_id, client_key))
        return None if raw is None else int(raw)

    async def get_many(self, refs: list[tuple[int, int]]) -> list[Tweet | None]:
        """Documents for (author id, tweet id) refs, tombstones included, in order. One MGET on a
        single server; on a cluster one pipelined round trip per node."""
        if not refs:
            return []
        raws = await mget(self._redis, [tweet_key(author, tweet) for author, tweet in refs])
        return [None if raw is None else Tweet.from_json(raw) for raw in raws]

    async def timeline_page(self, author_id: int, first: int, before: int | None) -> TimelinePage:
        """Ids of the author's tweets, newest first, strictly older than `before`."""
        start = b"+" if before is None else b"(" + member(before)
        members = await self._redis.zrange(
            timeline_key(author_id), start, b"-", desc=True, bylex=True, offset=0, num=first + 1
        )
        ids = [int.from_bytes(reply_bytes(raw), "big") for raw in members]
        return TimelinePage(tweet_ids=ids[:first], has_next_page=len(ids) > first)

    async def recent_tweet_ids(
        self, author_ids: list[int], per_author: int, before: dict[int, int] | None = None
    ) -> dict[int, list[int]]:
        """The newest `per_author` tweet ids of each author (newest first), older than
        `before[author]` where given: one pipelined round trip per shard, the shards queried
        concurrently on a cluster."""
        if not author_ids:
            return {}
        before = before or {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for author in author_ids:
                start = b"(" + member(before[author]) if author in before else b"+"
                pipe.zrange(
                    timeline_key(author),
                    start,
                    b"-",
                    desc=True,
                    bylex=True,
                    offset=0,
                    num=per_author,
                )
            results = await pipe.execute()
        return {
            author: [int.from_bytes(raw, "big") for raw in members]
            for author, members in zip(author_ids, results, strict=True)
        }

    async def tombstone(self, tweet: Tweet) -> bool:
        """Replace the document with its tombstone and drop it from the timeline. True if it was
        live; repeating it changes nothing."""
        keys = [tweet_key(tweet.author_id, tweet.tweet_id), timeline_key(tweet.author_id)]
        args: list[EncodableT] = [tweet.tombstone().to_json(), member(tweet.tweet_id)]
        return bool(await self._tombstone(keys=keys, args=args))
