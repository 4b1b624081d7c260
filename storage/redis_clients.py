"""Connections to the Redis roles. One place decides timeouts and decoding for every client."""

from __future__ import annotations

import redis.asyncio as aioredis


def open_redis(url: str, *, timeout_seconds: float) -> aioredis.Redis:
    """A pooled async client that returns bytes and gives up on a dead server after the timeout."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
    )
