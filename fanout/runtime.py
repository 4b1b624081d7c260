"""What actors use to reach the stores, built once per worker process on its event loop.

The API hands stores to resolvers through the request context; a Dramatiq worker has no request,
so the worker entry point (`fanout.worker`) configures this module with its settings and actors ask
`resources()` for clients, created lazily on the worker's event-loop thread (where they must live).
"""

from __future__ import annotations

from dataclasses import dataclass

from graph.cypher import CypherGraph
from graph.factory import open_graph
from settings import Settings
from storage.accounts import AccountStore
from storage.fanout_stats import FanoutStats
from storage.feeds import FeedCache, open_feed_cache
from storage.media import MediaLibrary, open_media_library
from storage.redis_clients import open_redis
from storage.tweets import TweetStore


@dataclass
class WorkerResources:
    settings: Settings
    graph: CypherGraph
    accounts: AccountStore
    tweets: TweetStore
    media: MediaLibrary
    feeds: FeedCache
    stats: FanoutStats


_settings: Settings | None = None
_resources: WorkerResources | None = None


def configure(settings: Settings) -> None:
    global _settings, _resources
    _settings, _resources = settings, None


async def resources() -> WorkerResources:
    global _resources
    if _resources is None:
        if _settings is None:
            raise RuntimeError("fanout.runtime.configure() was not called")
        documents = open_redis(
            _settings.documents_redis_url,
            timeout_seconds=_settings.redis_timeout_seconds,
            cluster=_settings.documents_redis_cluster,
        )
        feeds = open_feed_cache(_settings)
        _resources = WorkerResources(
            settings=_settings,
            graph=open_graph(_settings),
            accounts=AccountStore(documents),
            tweets=TweetStore(documents, idempotency_ttl_seconds=_settings.idempotency_ttl_seconds),
            media=open_media_library(_settings, documents),
            feeds=feeds,
            stats=FanoutStats(feeds.client),
        )
    return _resources
