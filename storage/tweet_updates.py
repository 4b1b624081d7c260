"""Live count changes for the tweetUpdates subscriptions of one API process.

One pub/sub listener per process on the documents Redis (where the counts live and are
published: storage/tweet_counts.py), subscribed to the counts channel of every tweet some
subscription here watches (reference-counted over the subscriptions), demultiplexed in memory.
On a cluster the channels are sharded (SSUBSCRIBE on the node of the tweet's slot).

Coalescing happens twice. At the source, each API process publishes a tweet's counts at most
once per interval (storage/tweet_counts.py), so a like storm reaches this listener as about one
message per second per publishing process. Here, each subscription keeps only the latest counts
per tweet and hands a tweet out at most once per interval (`Coalescer`); what arrives meanwhile
replaces what waits, so the newest counts always go out (the trailing edge), and counts equal to
what was last handed out are not repeated.

A watched tweet that is deleted is told once, as the last update of it (`deleted`, with the
counts it ended with): the deletion comes on the tweet's counts channel after every counts
message published before it (storage/tweet_counts.py), is handed out at once (never held back
by the interval, never dropped as unchanged, in place of counts still waiting), and the tweet
is no longer watched by anyone it reached: each releases its reference, and the channel is
unsubscribed once no subscription here watches the tweet. The other tweets go on.

Delivery is at most once: after the pub/sub connection drops, the listener subscribes again and
re-reads the counts of every watched tweet and whether it still exists (one MGET of each,
concurrently), so a subscription still ends on the latest counts and learns of a deletion it
missed. A new watch reads the same right after subscribing: a tweet deleted between the
subscription's check and its channel's subscription is told too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from storage import pubsub
from storage.redis_clients import DocumentsRedis
from storage.tweet_counts import (
    TweetCounters,
    TweetCounts,
    counts_channel,
    decode_message,
    tweet_of_channel,
)
from storage.tweets import TweetStore

TweetRef = tuple[int, int]  # (author id, tweet id)
Clock = Callable[[], float]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TweetUpdate:
    """What a subscription is told about one watched tweet."""

    ref: TweetRef
    counts: TweetCounts
    deleted: bool = False  # the tweet was deleted: its last update, with the counts it ended with


@dataclass
class Coalescer:
    """The latest counts per tweet, handed out at most once per `interval` seconds per tweet
    (leading edge at once, then what came meanwhile when the interval ends); a deletion at
    once. `due` is the pure decision; `next` waits for it."""

    interval: float
    clock: Clock = time.monotonic
    _waiting: dict[TweetRef, TweetUpdate] = field(default_factory=dict)
    _sent: dict[TweetRef, tuple[float, TweetCounts]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, ref: TweetRef, counts: TweetCounts) -> None:
        self._offer(TweetUpdate(ref, counts))

    def offer_deletion(self, ref: TweetRef, counts: TweetCounts) -> None:
        """`ref` was deleted (`counts`: those it ended with): due at once, whatever the
        interval and even if the counts did not change, in place of counts waiting. The caller
        offers nothing more for `ref`."""
        self._offer(TweetUpdate(ref, counts, deleted=True))

    def _offer(self, update: TweetUpdate) -> None:
        self._waiting[update.ref] = update
        self._wake.set()

    def idle(self) -> bool:
        """Nothing waits to be handed out."""
        return not self._waiting

    def due(self) -> tuple[list[TweetUpdate], float | None]:
        """What may be handed out now (taken from the waiting ones), and in how many seconds
        the next waiting one may (None: nothing waits)."""
        now = self.clock()
        ready: list[TweetUpdate] = []
        next_in: float | None = None
        for ref, update in list(self._waiting.items()):
            sent = self._sent.get(ref)
            if update.deleted:
                del self._waiting[ref]
                self._sent.pop(ref, None)  # nothing more comes for it
                ready.append(update)
                continue
            if sent is not None and sent[1] == update.counts:
                del self._waiting[ref]  # nothing new to say
                continue
            wait = 0.0 if sent is None else sent[0] + self.interval - now
            if wait <= 0:
                del self._waiting[ref]
                self._sent[ref] = (now, update.counts)
                ready.append(update)
            else:
                next_in = wait if next_in is None else min(next_in, wait)
        return ready, next_in

    async def next(self) -> list[TweetUpdate]:
        """Wait until something is due; returns it (never empty)."""
        while True:
            ready, next_in = self.due()
            if ready:
                return ready
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next_in):
                    await self._wake.wait()


@dataclass(eq=False)
class CountsWatch:
    """One subscription's tweets (those not deleted yet) and what is due for it."""

    refs: set[TweetRef]
    updates: Coalescer

    def finished(self) -> bool:
        """Every watched tweet was deleted and every update handed out: nothing more can
        come."""
        return not self.refs and self.updates.idle()


class TweetUpdatesHub:
    def __init__(
        self,
        client: DocumentsRedis,
        counters: TweetCounters,
        tweets: TweetStore,
        *,
        interval_seconds: float,
    ) -> None:
        self._counters = counters
        self._tweets = tweets
        self._interval = interval_seconds
        self._listener = pubsub.listener(client)
        self._watches: dict[TweetRef, set[CountsWatch]] = {}
        self._subscribed = asyncio.Event()  # the listener holds a connection to read
        self._background: set[asyncio.Future[object]] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._listener.aclose()

    async def watch(self, refs: list[TweetRef]) -> CountsWatch:
        """Start delivering the count changes of `refs`, and their counts now (or their
        deletion, if they were deleted meanwhile), so the subscriber starts from the latest
        whatever happened before."""
        watch = CountsWatch(set(refs), Coalescer(self._interval))
        new = []
        for ref in watch.refs:
            watching = self._watches.setdefault(ref, set())
            if not watching:
                new.append(counts_channel(*ref))
            watching.add(watch)
        if new:
            await self._listener.subscribe(*new)
            self._subscribed.set()
        await self._offer_current(sorted(watch.refs), only=watch)
        return watch

    def unwatch(self, watch: CountsWatch) -> None:
        self._release(watch, list(watch.refs))

    def _release(self, watch: CountsWatch, refs: list[TweetRef]) -> None:
        """Deliver nothing more of `refs` to `watch`; a channel no watch here needs any more is
        unsubscribed."""
        gone = []
        for ref in refs:
            watch.refs.discard(ref)
            watching = self._watches.get(ref, set())
            watching.discard(watch)
            if not watching:
                self._watches.pop(ref, None)
                gone.append(ref)
        if gone:
            # Never wait on the pub/sub connection here (a closing socket waits for this).
            self._spawn(self._unsubscribe_unless_watched(gone))

    async def _unsubscribe_unless_watched(self, refs: list[TweetRef]) -> None:
        channels = [counts_channel(*ref) for ref in refs if ref not in self._watches]
        if channels:
            await self._listener.unsubscribe(*channels)

    def _spawn(self, command: Awaitable[object]) -> None:
        task = asyncio.ensure_future(command)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _deliver(
        self, ref: TweetRef, counts: TweetCounts, deleted: bool, to: list[CountsWatch]
    ) -> None:
        """Offer `ref`'s counts, or its deletion, to the watches in `to` that still watch it;
        a deletion ends their watch of it."""
        for watch in to:
            if ref not in watch.refs:
                continue  # told of its deletion already
            if deleted:
                self._release(watch, [ref])
                watch.updates.offer_deletion(ref, counts)
            else:
                watch.updates.offer(ref, counts)

    def _dispatch(self, channel: str, data: bytes) -> None:
        ref = tweet_of_channel(channel)
        counts, deleted = decode_message(data)
        self._deliver(ref, counts, deleted, list(self._watches.get(ref, ())))

    async def _offer_current(self, refs: list[TweetRef], only: CountsWatch | None = None) -> None:
        """Offer `refs`' counts as they are now, or their deletion if they are gone, to every
        watch of them (`only`: to that one)."""
        counts, tweets = await asyncio.gather(
            self._counters.read(refs), self._tweets.get_many(refs)
        )
        for ref, now, tweet in zip(refs, counts, tweets, strict=True):
            to = [only] if only is not None else list(self._watches.get(ref, ()))
            self._deliver(ref, now, tweet is None or tweet.deleted, to)

    async def _refresh(self) -> None:
        """Offer every watched tweet's counts as they are now, or its deletion (after missed
        messages)."""
        await self._offer_current(sorted(self._watches))

    async def _listen(self) -> None:
        await self._subscribed.wait()
        await pubsub.dispatch_forever(
            self._listener, self._dispatch, what="tweet updates", after_reconnect=self._refresh
        )
