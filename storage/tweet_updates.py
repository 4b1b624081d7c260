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

Delivery is at most once: after the pub/sub connection drops, the listener subscribes again and
re-reads the counts of every watched tweet (one MGET), so a subscription still ends on the
latest counts.
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
from storage.tweet_counts import TweetCounters, TweetCounts, counts_channel, tweet_of_channel

TweetRef = tuple[int, int]  # (author id, tweet id)
Clock = Callable[[], float]

log = logging.getLogger(__name__)


@dataclass
class Coalescer:
    """The latest counts per tweet, handed out at most once per `interval` seconds per tweet
    (leading edge at once, then what came meanwhile when the interval ends). `due` is the
    pure decision; `next` waits for it."""

    interval: float
    clock: Clock = time.monotonic
    _waiting: dict[TweetRef, TweetCounts] = field(default_factory=dict)
    _sent: dict[TweetRef, tuple[float, TweetCounts]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, ref: TweetRef, counts: TweetCounts) -> None:
        self._waiting[ref] = counts
        self._wake.set()

    def due(self) -> tuple[list[tuple[TweetRef, TweetCounts]], float | None]:
        """What may be handed out now (taken from the waiting ones), and in how many seconds
        the next waiting one may (None: nothing waits)."""
        now = self.clock()
        ready: list[tuple[TweetRef, TweetCounts]] = []
        next_in: float | None = None
        for ref, counts in list(self._waiting.items()):
            sent = self._sent.get(ref)
            if sent is not None and sent[1] == counts:
                del self._waiting[ref]  # nothing new to say
                continue
            wait = 0.0 if sent is None else sent[0] + self.interval - now
            if wait <= 0:
                del self._waiting[ref]
                self._sent[ref] = (now, counts)
                ready.append((ref, counts))
            else:
                next_in = wait if next_in is None else min(next_in, wait)
        return ready, next_in

    async def next(self) -> list[tuple[TweetRef, TweetCounts]]:
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
    """One subscription's tweets and what is due for it."""

    refs: frozenset[TweetRef]
    updates: Coalescer


class TweetUpdatesHub:
    def __init__(
        self, client: DocumentsRedis, counters: TweetCounters, *, interval_seconds: float
    ) -> None:
        self._counters = counters
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
        """Start delivering the count changes of `refs`, and their counts now (one MGET), so
        the subscriber starts from the latest whatever happened before."""
        watch = CountsWatch(frozenset(refs), Coalescer(self._interval))
        new = []
        for ref in watch.refs:
            watching = self._watches.setdefault(ref, set())
            if not watching:
                new.append(counts_channel(*ref))
            watching.add(watch)
        if new:
            await self._listener.subscribe(*new)
            self._subscribed.set()
        ordered = sorted(watch.refs)
        for ref, counts in zip(ordered, await self._counters.read(ordered), strict=True):
            watch.updates.offer(ref, counts)
        return watch

    def unwatch(self, watch: CountsWatch) -> None:
        gone = []
        for ref in watch.refs:
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

    def _dispatch(self, channel: str, data: bytes) -> None:
        ref = tweet_of_channel(channel)
        counts = TweetCounts.decode(data)
        for watch in self._watches.get(ref, ()):
            watch.updates.offer(ref, counts)

    async def _refresh(self) -> None:
        """Offer every watched tweet's counts as they are now (after missed messages)."""
        refs = sorted(self._watches)
        for ref, counts in zip(refs, await self._counters.read(refs), strict=True):
            for watch in self._watches.get(ref, ()):
                watch.updates.offer(ref, counts)

    async def _listen(self) -> None:
        await self._subscribed.wait()
        await pubsub.dispatch_forever(
            self._listener, self._dispatch, what="tweet updates", after_reconnect=self._refresh
        )
