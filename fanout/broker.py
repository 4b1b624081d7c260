"""The Dramatiq broker, built from settings, with the async-actor middleware."""

from __future__ import annotations

from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

from settings import Settings


def build_broker(settings: Settings) -> RedisBroker:
    """A Redis broker on `BROKER_REDIS_URL`.

    Redelivery of a dead worker's messages: a worker that misses heartbeats for
    `BROKER_HEARTBEAT_TIMEOUT_MS` is considered dead, and its unacknowledged messages are requeued
    by the queue maintenance that runs on about `BROKER_MAINTENANCE_CHANCE` of every million broker
    commands. Dramatiq's defaults (60 s, 1,000) suit batch work, not a feed with a seconds-scale
    lag target; see README for the production values.
    """
    broker = RedisBroker(
        url=settings.broker_redis_url,
        heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
        maintenance_chance=settings.broker_maintenance_chance,
    )
    broker.add_middleware(AsyncIO())
    return broker
