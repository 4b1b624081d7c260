"""64-bit, time-ordered, unique ids (snowflake layout) with a worker number leased in Redis.

Layout, high to low: 41 bits of milliseconds since EPOCH_MS (good until 2093), 10 bits of worker
number, 12 bits of sequence within the millisecond: up to 4,096 ids per ms per process with no round
trip. Two processes never share a worker number because each holds a Redis lease on it, renewed in
the background; a process that loses its lease, or whose clock goes backwards, stops issuing ids
instead of risking a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time

from storage import lua
from storage.redis_clients import DocumentsRedis

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKERS = 1 << WORKER_BITS
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
LEASE_MS = 30_000
RENEW_EVERY_SECONDS = LEASE_MS / 1000 / 3

log = logging.getLogger(__name__)


class IdGenerationStopped(RuntimeError):
    """Ids cannot be issued safely: the clock went backwards or the worker lease was lost."""


def _lease_key(worker: int) -> str:
    return f"idgen:worker:{worker}"


def id_time_ms(value: int) -> int:
    """The Unix time in ms at which id `value` was issued."""
    return (value >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH_MS


class IdGenerator:
    """Issues ids for one process. `start()` leases a worker number; `stop()` releases it."""

    def __init__(self, client: DocumentsRedis, clock=time.time) -> None:
        self._client = client
        self._renew = lua.register(client, "renew_lease")
        self._release = lua.register(client, "unlock")
        self._clock = clock
        self._token = secrets.token_hex(16)
        self._worker: int | None = None
        self._last_ms = -1
        self._sequence = 0
        self._renewer: asyncio.Task[None] | None = None

    @property
    def worker(self) -> int | None:
        return self._worker

    async def start(self) -> None:
        """Lease a free worker number (trying all from a random start). Raises if none is free."""
        first = random.randrange(MAX_WORKERS)
        for offset in range(MAX_WORKERS):
            worker = (first + offset) % MAX_WORKERS
            if await self._client.set(_lease_key(worker), self._token, nx=True, px=LEASE_MS):
                self._worker = worker
                self._renewer = asyncio.create_task(self._renew_forever())
                return
        raise IdGenerationStopped("all worker numbers are leased")

    async def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        if self._worker is not None:
            await self._release(keys=[_lease_key(self._worker)], args=[self._token])
            self._worker = None

    async def _renew_forever(self) -> None:
        assert self._worker is not None
        key = _lease_key(self._worker)
        while True:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            try:
                held = await self._renew(keys=[key], args=[self._token, LEASE_MS])
            except Exception:  # a blip: retry at the next tick; the lease outlives two misses
                log.warning("id worker lease renewal failed", exc_info=True)
                continue
            if not held:
                log.error("id worker lease %s lost; id generation stops", key)
                self._worker = None
                return

    def next_id(self) -> int:
        """A new id, larger than every id this generator issued before. Never blocks on I/O."""
        if self._worker is None:
            raise IdGenerationStopped("no worker lease held")
        now = self._now_ms()
        if now < self._last_ms:
            raise IdGenerationStopped(f"clock moved back {self._last_ms - now} ms")
        if now == self._last_ms:
            self._sequence = (self._sequence + 1) & MAX_SEQUENCE
            if self._sequence == 0:  # 4,096 ids this ms already: wait for the next one
                while now <= self._last_ms:
                    now = self._now_ms()
        else:
            self._sequence = 0
        self._last_ms = now
        elapsed = now - EPOCH_MS
        return (
            (elapsed << (WORKER_BITS + SEQUENCE_BITS))
            | (self._worker << SEQUENCE_BITS)
            | (self._sequence)
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
