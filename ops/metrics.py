"""Prometheus metrics: request counts and latencies per route, exposed at /metrics to the
operator only: with METRICS_TOKEN as a bearer token, or in development without one. Fan-out
counters and the graph replica's replication lag are sampled when /metrics is scraped.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.port import GraphUnavailable, ReplicationLag
from settings import Settings
from storage.fanout_stats import FanoutStats

log = logging.getLogger(__name__)


def metrics_allowed(settings: Settings, authorization: str | None) -> bool:
    """Whether a scrape with this Authorization header may read /metrics."""
    if not settings.metrics_token:
        return settings.app_env == "development"
    expected = f"Bearer {settings.metrics_token}"
    return hmac.compare_digest((authorization or "").encode(), expected.encode())


class Metrics:
    """The app's own registry (not the process-global one), so several apps can share a process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.fanout_stats: FanoutStats | None = None  # set once the feed Redis is connected
        # Set when the graph reads from a replica (FALKORDB_REPLICA_URL).
        self.graph_replica_lag: Callable[[], Awaitable[ReplicationLag]] | None = None
        # Set by the wiring: per Redis role, how far each master's slowest replica trails it.
        self.redis_replication_lag: dict[str, Callable[[], Awaitable[dict[str, int]]]] = {}
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request start to response start, by route.",
            ["route"],
            registry=self.registry,
        )

        self.feed_misses = Counter(
            "feed_cache_misses_total",
            "Feed reads that found no complete cached feed.",
            registry=self.registry,
        )
        self.feed_rebuilds = Histogram(
            "feed_rebuild_duration_seconds",
            "Time to rebuild one feed from the graph and the tweet shards.",
            registry=self.registry,
        )
        # Fan-out happens in the workers; they record into Redis and a scrape reads it here.
        self.fanout_counters = Gauge(
            "fanout_total", "Fan-out work done by all workers.", ["what"], registry=self.registry
        )
        self.fanout_lag = Gauge(
            "fanout_lag_feeds",
            "Feeds reached, by the bucket (ms, upper bound) of tweet-created-to-pushed lag.",
            ["le_ms"],
            registry=self.registry,
        )

        self.graph_lag_bytes = Gauge(
            "graph_replica_lag_bytes",
            "Replication stream bytes the graph replica has not processed yet (primary's "
            "master_repl_offset minus the replica's slave_repl_offset), sampled per scrape; "
            "-1 when either server did not answer or the replica follows no primary.",
            registry=self.registry,
        )
        self.graph_link_up = Gauge(
            "graph_replica_link_up",
            "1 if the graph replica's link to its primary is up, else 0 (sampled per scrape).",
            registry=self.registry,
        )

        self.redis_lag_bytes = Gauge(
            "redis_replica_lag_bytes",
            "Replication stream bytes the slowest replica of each Redis master has not processed "
            "yet (master_repl_offset minus the replica's offset), by role and master, sampled "
            "per scrape; -1 for a master without a replica.",
            ["role", "master"],
            registry=self.registry,
        )

    async def _sample_redis_replicas(self) -> None:
        for role, sample in self.redis_replication_lag.items():
            try:
                lags = await sample()
            except Exception as exc:  # a scrape must answer even with a backend down
                log.debug("%s replication lag not sampled: %s", role, exc)
                continue
            for master, lag in lags.items():
                self.redis_lag_bytes.labels(role, master).set(lag)

    async def _sample_graph_replica(self) -> None:
        if self.graph_replica_lag is None:
            return
        try:
            lag = await self.graph_replica_lag()
        except GraphUnavailable as exc:
            log.debug("graph replication lag not sampled: %s", exc)
            self.graph_lag_bytes.set(-1)
            self.graph_link_up.set(0)
            return
        self.graph_lag_bytes.set(lag.lag_bytes)
        self.graph_link_up.set(1 if lag.link_up else 0)

    async def endpoint(self, request: Request) -> Response:
        settings: Settings = request.app.state.services.settings
        if not metrics_allowed(settings, request.headers.get("authorization")):
            if not settings.metrics_token:  # off: as if there were no such page
                return PlainTextResponse("Not Found", status_code=404)
            return PlainTextResponse(
                "Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        if self.fanout_stats is not None:
            counters, lag = await self.fanout_stats.counters()
            for what, value in counters.items():  # batches, feeds_considered, inserts
                self.fanout_counters.labels(what).set(value)
            for bucket, value in lag.items():
                self.fanout_lag.labels(bucket).set(value)
        await self._sample_graph_replica()
        await self._sample_redis_replicas()
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


# Label values are the known routes only, so a scan of random URLs cannot grow the label set.
_ROUTES = ("/graphql", "/healthz", "/metrics")


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in _ROUTES else "/static" if path.startswith("/static/") else "other"
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
