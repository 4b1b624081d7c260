"""Live feed events for the subscriptions of one API process.

One pub/sub listener per process (not per WebSocket) on the feed Redis, subscribed to the
live channel (storage/presence.py) of every viewer with a subscription here, and demultiplexed
in memory to their queues: one connection on a single server; on a cluster, sharded pub/sub with
one connection per node that owns one of those channels (storage/pubsub.py). While a viewer is
subscribed, a heartbeat keeps their presence key alive, which is how fan-out knows to publish
for them. Celebrity tweets are never fanned out;
the process's celebrity cache reports them here and they go to the local subscribers who follow
that celebrity.

Delivery is at most once: a full queue drops its oldest event, and a dropped connection loses
what was published meanwhile. Clients resubscribe with a cursor and get what they missed from
the feed.

The always-subscribed hub channel also carries revocations (logOutEverywhere): every process
re-checks the token of each socket it holds for that user, and those that no longer hold close.
A revocation lost with a dropped connection is caught by the check before each operation and by
the subscriptions' periodic re-check (TOKEN_RECHECK_SECONDS).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from storage import pubsub
from storage.celebrity_timelines import CelebrityTimelines
from storage.presence import HUB_CHANNEL, Presence, live_channel, viewer_of_channel
from storage.redis_clients import FeedRedis

QUEUE_SIZE = 100

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveEvent:
    kind: str  # "tweet" or "deleted"
    author_id: int
    tweet_id: int
    original: tuple[int, int] | None = None  # a retweet's original (author id, tweet id)


class TooManyConnections(Exception):
    """The user already holds the maximum number of WebSocket connections."""


@dataclass(frozen=True, eq=False)
class _Connection:
    user_id: int
    recheck: Callable[[], Awaitable[bool]]  # checks the socket's token; closes it if revoked


@dataclass(eq=False)
class LiveSubscription:
    viewer_id: int
    celebrities: frozenset[int]
    queue: asyncio.Queue[LiveEvent] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )

    def offer(self, event: LiveEvent) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # at most once: the oldest goes; a replay recovers it
        self.queue.put_nowait(event)


class LiveHub:
    """`client` is the feed-role client (its pub/sub carries the live channels); `presence`
    records who is live there."""

    def __init__(
        self,
        client: FeedRedis,
        presence: Presence,
        celebrities: CelebrityTimelines,
        *,
        presence_ttl_seconds: int,
        max_per_user: int,
    ) -> None:
        self._redis = client
        self._presence = presence
        self._celebrities = celebrities
        self._presence_ttl = presence_ttl_seconds
        self._max_per_user = max_per_user
        self._subscriptions: dict[int, set[LiveSubscription]] = {}
        self._connections: dict[str, _Connection] = {}  # by connection slot
        self._background: set[asyncio.Future[object]] = set()
        self._listener = pubsub.listener(client)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        # Always subscribed (the connection exists before any viewer): revocations.
        await self._listener.subscribe(HUB_CHANNEL)
        self._tasks = [
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._celebrities.refresh_forever(self.celebrity_tweets)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._listener.aclose()

    async def open_connection(self, user_id: int, recheck: Callable[[], Awaitable[bool]]) -> str:
        """Count a new WebSocket of the user against MAX_WS_CONNECTIONS_PER_USER (over every
        API process; a slot lapses if its process stops heartbeating). Returns its slot.
        `recheck` is called when the user's tokens are revoked. Raises TooManyConnections."""
        slot = secrets.token_hex(8)
        if not await self._presence.claim_live_slot(
            user_id, slot, self._max_per_user, self._presence_ttl
        ):
            raise TooManyConnections(user_id)
        self._connections[slot] = _Connection(user_id, recheck)
        return slot

    async def close_connection(self, slot: str) -> None:
        connection = self._connections.pop(slot, None)
        if connection is not None:
            await self._presence.release_live_slot(connection.user_id, slot)

    async def revoke(self, user_id: int) -> None:
        """Tell every API process to re-check the user's sockets now (after logOutEverywhere
        changed the token version), so revoked ones close within moments."""
        await pubsub.publish(self._redis, HUB_CHANNEL, json.dumps({"revoked": user_id}))

    async def _recheck(self, connection: _Connection) -> None:
        try:
            await connection.recheck()
        except Exception:  # the check before the next operation still holds
            log.warning("re-checking a revoked user's socket failed", exc_info=True)

    async def join(self, viewer_id: int, celebrities: list[int]) -> LiveSubscription:
        """Start delivering to a new subscription."""
        subscription = LiveSubscription(viewer_id, frozenset(celebrities))
        local = self._subscriptions.setdefault(viewer_id, set())
        local.add(subscription)
        if len(local) == 1:
            await self._listener.subscribe(live_channel(viewer_id))
        await self._presence.mark_online(viewer_id, self._presence_ttl)
        await self._celebrities.recent(celebrities)  # the baseline: later tweets are news
        return subscription

    async def leave(self, subscription: LiveSubscription) -> None:
        """Stop delivering to it. The presence key is left to expire: another process may hold
        a subscription of the same viewer."""
        local = self._subscriptions.get(subscription.viewer_id, set())
        local.discard(subscription)
        if not local:
            self._subscriptions.pop(subscription.viewer_id, None)
            # Never wait on the pub/sub connection here: its reader task may hold it for up to
            # a second, and a closing socket waits for this.
            self._spawn(self._unsubscribe_unless_rejoined(subscription.viewer_id))

    async def _unsubscribe_unless_rejoined(self, viewer_id: int) -> None:
        if viewer_id not in self._subscriptions:  # a new subscription may have come meanwhile
            await self._listener.unsubscribe(live_channel(viewer_id))

    def _spawn(self, command: Awaitable[object]) -> None:
        task = asyncio.ensure_future(command)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def celebrity_tweets(self, celebrity_id: int, tweet_ids: list[int]) -> None:
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                if celebrity_id in subscription.celebrities:
                    for tweet_id in sorted(tweet_ids):
                        subscription.offer(LiveEvent("tweet", celebrity_id, tweet_id))

    def _dispatch(self, channel: str, data: bytes) -> None:
        if channel == HUB_CHANNEL:
            revoked = json.loads(data)["revoked"]
            for connection in list(self._connections.values()):
                if connection.user_id == revoked:
                    self._spawn(self._recheck(connection))
            return
        viewer_id = viewer_of_channel(channel)
        payload = json.loads(data)
        original = payload.get("original")
        event = LiveEvent(
            payload["kind"],
            payload["author_id"],
            payload["tweet_id"],
            None if original is None else (int(original[0]), int(original[1])),
        )
        for subscription in self._subscriptions.get(viewer_id, ()):
            subscription.offer(event)

    async def _listen(self) -> None:
        # Events published while the connection was down are lost (resubscribe with a cursor).
        await pubsub.dispatch_forever(self._listener, self._dispatch, what="live hub")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._presence_ttl / 3)
            try:
                slots = [(c.user_id, slot) for slot, c in self._connections.items()]
                await self._presence.mark_online_many(
                    list(self._subscriptions), self._presence_ttl, slots
                )
                for subscriptions in list(self._subscriptions.values()):
                    for subscription in subscriptions:
                        self._celebrities.follow_interest(list(subscription.celebrities))
            except Exception:  # a blip; the presence TTL outlives two missed beats
                log.warning("presence heartbeat failed", exc_info=True)
