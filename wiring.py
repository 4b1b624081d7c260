"""The one place that builds every store and service from Settings, for the API and the workers.

`open_stores` connects the stores both kinds of process use; `open_services` adds what the API
serves with (domain services, the live hub, the id lease, the tweet cache and its invalidation
listener); `WorkerJobs` builds, lazily on the worker's event loop, the `FanOut` its actors run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from auth.passwords import PasswordHasher
from auth.tokens import TokenIssuer
from fanout.actors import Actors, declare_actors
from fanout.broker import build_broker
from fanout.jobs import Jobs
from graph.factory import open_graph, replication_lag_probe
from graph.port import SocialGraph
from ops.metrics import Metrics
from resolvers.context import Services
from schema.limits import SlotCappedGraph
from settings import Settings
from social.accounts import Accounts, LoginRates
from social.engagement import Engagement
from social.fanout import FanOut
from social.feed import CELEBRITY_RECENT, HomeFeed
from social.following import Following
from social.lookups import Lookups
from social.posting import Posting
from social.retweeting import Retweeting
from social.throttle import Throttle
from social.uploads import Uploads
from storage.accounts import AccountStore
from storage.celebrity_timelines import CelebrityTimelines
from storage.conversations import Conversations
from storage.fanout_stats import FanoutStats
from storage.feeds import FeedCache
from storage.followee_sets import FolloweeSets
from storage.ids import IdGenerator
from storage.likes import LikeStore
from storage.live_hub import LiveHub
from storage.media import MediaLibrary, open_media_library
from storage.object_store import S3ObjectStore
from storage.page_documents import PageDocumentReader
from storage.presence import Presence
from storage.rate_limits import RateLimiter
from storage.rebuild_locks import RebuildLocks
from storage.redis_clients import (
    DocumentsRedis,
    FeedRedis,
    open_feed_redis,
    open_redis,
    replication_lag,
)
from storage.retweets import RetweetStore
from storage.tweet_cache import TweetCache, TweetInvalidations, listen_for_invalidations
from storage.tweet_counts import TweetCounters
from storage.tweet_updates import TweetUpdatesHub
from storage.tweets import TweetStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stores:
    """Every store, on the clients of their roles: documents (sharded by author), the feed
    cache, the graph."""

    documents: DocumentsRedis
    feed_redis: FeedRedis
    graph: SocialGraph
    accounts: AccountStore
    tweets: TweetStore
    media: MediaLibrary
    feeds: FeedCache
    followee_sets: FolloweeSets
    stats: FanoutStats

    async def close(self) -> None:
        """Close every client; a backend that is gone must not keep the others open."""
        for step in (self.graph.close, self.documents.aclose, self.feed_redis.aclose):
            try:
                await step()
            except Exception:
                log.warning("closing %s failed", step.__qualname__, exc_info=True)


def open_stores(settings: Settings) -> Stores:
    """The stores; clients connect on first use. The caller must `close()` them."""
    documents = open_redis(
        settings.documents_redis_url,
        timeout_seconds=settings.redis_timeout_seconds,
        cluster=settings.documents_redis_cluster,
    )
    feed_redis = open_feed_redis(settings)  # one server, or a cluster (FEED_REDIS_CLUSTER)
    return Stores(
        documents=documents,
        feed_redis=feed_redis,
        graph=open_graph(settings),
        accounts=AccountStore(documents),
        tweets=TweetStore(documents, idempotency_ttl_seconds=settings.idempotency_ttl_seconds),
        media=open_media_library(settings, documents),
        feeds=FeedCache(
            feed_redis, feed_max=settings.feed_max, ttl_seconds=settings.active_days * 86400
        ),
        followee_sets=FolloweeSets(feed_redis),
        stats=FanoutStats(feed_redis),
    )


def fan_out_jobs(settings: Settings, stores: Stores, jobs: Jobs) -> FanOut:
    return FanOut(
        graph=stores.graph,
        tweets=stores.tweets,
        retweets=RetweetStore(stores.documents),
        feeds=stores.feeds,
        followee_sets=stores.followee_sets,
        stats=stores.stats,
        accounts=stores.accounts,
        media=stores.media,
        jobs=jobs,
        page_size=settings.fanout_page_size,
        batch_size=settings.fanout_batch_size,
        celebrity_followers=settings.celebrity_followers,
        celebrity_hysteresis=settings.celebrity_hysteresis,
    )


class WorkerJobs:
    """What a worker's actors run: the `FanOut`, built on first use on the worker's event loop
    (its clients must live there) and kept for the life of the process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._fanout: FanOut | None = None
        self.broker = build_broker(settings)
        self.actors: Actors = declare_actors(self.broker, self)

    async def __call__(self) -> FanOut:
        if self._fanout is None:
            stores = open_stores(self._settings)
            self._fanout = fan_out_jobs(self._settings, stores, Jobs(self.broker, self.actors))
        return self._fanout


async def _jobs_run_in_workers() -> FanOut:
    raise RuntimeError("jobs run in the workers (python -m fanout), not in the API")


def open_jobs(settings: Settings) -> Jobs:
    """The API's handle on the job queue: it sends messages and runs no actor."""
    broker = build_broker(settings)
    return Jobs(broker, declare_actors(broker, _jobs_run_in_workers))


@contextlib.asynccontextmanager
async def open_services(settings: Settings, metrics: Metrics) -> AsyncIterator[Services]:
    """Connect to every backend, set up the graph schema and the media bucket, lease an id
    worker, subscribe to tweet invalidations; undo all on exit, in reverse, whatever failed
    (a backend that is gone must not keep the others open)."""
    async with contextlib.AsyncExitStack() as undo:
        stores = open_stores(settings)
        undo.push_async_callback(_logged(stores.close))
        jobs = open_jobs(settings)
        undo.push_async_callback(_logged(asyncio.to_thread, jobs.close))
        cache = TweetCache(
            max_entries=settings.tweet_cache_size, ttl_seconds=settings.tweet_cache_ttl_seconds
        )
        subscribed = asyncio.Event()
        listener = asyncio.create_task(
            listen_for_invalidations(stores.documents, cache, subscribed)
        )
        undo.push_async_callback(_cancel, listener)
        await stores.graph.ensure_schema()
        if isinstance(stores.media.objects, S3ObjectStore):
            await stores.media.objects.ensure_bucket()
        ids = IdGenerator(stores.documents)
        await ids.start()
        undo.push_async_callback(_logged(ids.stop))
        async with asyncio.timeout(settings.redis_timeout_seconds * 5):
            await subscribed.wait()
        celebrities = CelebrityTimelines(
            stores.tweets,
            per_celebrity=CELEBRITY_RECENT,
            refresh_seconds=settings.celebrity_refresh_seconds,
        )
        live = LiveHub(
            stores.feed_redis,
            Presence(stores.feed_redis),
            celebrities,
            presence_ttl_seconds=settings.presence_ttl_seconds,
            max_per_user=settings.max_ws_connections_per_user,
        )
        await live.start()
        undo.push_async_callback(_logged(live.stop))
        # Engagement: the counters publish their changes; the hub delivers them to tweetUpdates.
        counters = TweetCounters(
            stores.documents, publish_interval_seconds=settings.tweet_updates_interval_seconds
        )
        undo.push_async_callback(_logged(counters.aclose))
        tweet_updates = TweetUpdatesHub(
            stores.documents,
            counters,
            stores.tweets,
            interval_seconds=settings.tweet_updates_interval_seconds,
        )
        await tweet_updates.start()
        undo.push_async_callback(_logged(tweet_updates.stop))
        metrics.fanout_stats = stores.stats
        metrics.graph_replica_lag = replication_lag_probe(stores.graph)
        metrics.redis_replication_lag = {
            "documents": functools.partial(replication_lag, stores.documents),
            "feeds": functools.partial(replication_lag, stores.feed_redis),
        }
        yield _api_services(
            settings, stores, jobs, ids, cache, celebrities, live, metrics, counters, tweet_updates
        )


def _logged(step: Callable[..., Awaitable[object]], *args: object) -> Callable[[], Awaitable[None]]:
    """`step(*args)` as a shutdown step whose failure is logged, not raised."""

    async def run() -> None:
        try:
            await step(*args)
        except Exception:
            log.warning("shutdown step %s failed", step.__qualname__, exc_info=True)

    return run


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _api_services(
    settings: Settings,
    stores: Stores,
    jobs: Jobs,
    ids: IdGenerator,
    cache: TweetCache,
    celebrities: CelebrityTimelines,
    live: LiveHub,
    metrics: Metrics,
    counters: TweetCounters,
    tweet_updates: TweetUpdatesHub,
) -> Services:
    # Each operation gets at most MAX_GRAPH_CALLS_PER_REQUEST graph calls in flight.
    graph = cast(SocialGraph, SlotCappedGraph(stores.graph))
    throttle = Throttle(RateLimiter(stores.feed_redis))
    likes = LikeStore(stores.documents)
    return Services(
        settings=settings,
        accounts=Accounts(
            accounts=stores.accounts,
            graph=graph,
            ids=ids,
            passwords=PasswordHasher(
                time_cost=settings.argon2_time_cost,
                memory_kib=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
            ),
            tokens=TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds),
            jobs=jobs,
            throttle=throttle,
            revoke=live.revoke,
            clock=time.time,
            claim_grace_seconds=settings.signup_claim_grace_seconds,
            rate_signups=settings.rate_signups,
            login_rates=LoginRates(
                per_address=settings.rate_logins,
                per_account_address=settings.rate_logins_per_account_ip,
                per_account=settings.rate_logins_per_account,
                delay_max_seconds=settings.login_delay_max_seconds,
            ),
        ),
        home_feed=HomeFeed(
            feeds=stores.feeds,
            followee_sets=stores.followee_sets,
            locks=RebuildLocks(stores.feed_redis),
            graph=graph,
            tweets=stores.tweets,
            celebrities=celebrities,
            metrics=metrics,
            feed_max=settings.feed_max,
            celebrities_per_read=settings.celebrities_merged_per_read,
            max_page_size=settings.max_page_size,
        ),
        posting=Posting(
            tweets=stores.tweets,
            retweets=RetweetStore(stores.documents),
            tweet_cache=cache,
            invalidations=TweetInvalidations(stores.documents),
            counters=counters,
            conversations=Conversations(stores.documents),
            media=stores.media,
            feeds=stores.feeds,
            ids=ids,
            jobs=jobs,
            throttle=throttle,
            clock=time.time,
            rate_tweets=settings.rate_tweets,
            max_page_size=settings.max_page_size,
            durable_replicas=settings.tweet_durable_replicas,
            durable_timeout_ms=settings.tweet_durable_timeout_ms,
        ),
        retweeting=Retweeting(
            tweets=stores.tweets,
            retweets=RetweetStore(stores.documents),
            counters=counters,
            tweet_cache=cache,
            invalidations=TweetInvalidations(stores.documents),
            feeds=stores.feeds,
            ids=ids,
            jobs=jobs,
            throttle=throttle,
            clock=time.time,
            rate_retweets=settings.rate_retweets,
        ),
        following=Following(
            graph=graph,
            feeds=stores.feeds,
            followee_sets=stores.followee_sets,
            tweets=stores.tweets,
            jobs=jobs,
            throttle=throttle,
            clock=time.time,
            rate_follows=settings.rate_follows,
            merge_tweets=settings.follow_merge_tweets,
            max_following=settings.max_following,
            max_page_size=settings.max_page_size,
        ),
        uploads=Uploads(
            media=stores.media,
            ids=ids,
            jobs=jobs,
            throttle=throttle,
            max_bytes=settings.media_max_bytes,
            max_pending_bytes=settings.media_max_pending_bytes,
            rate=settings.rate_media_uploads,
            complete_rate=settings.rate_media_completes,
        ),
        lookups=Lookups(
            accounts=stores.accounts,
            tweets=stores.tweets,
            tweet_cache=cache,
            graph=graph,
            pages=PageDocumentReader(stores.documents),
            counters=counters,
            likes=likes,
        ),
        live=live,
        media=stores.media,
        probes={"graph": stores.graph.ping, "redis": stores.accounts.ping},
        engagement=Engagement(
            likes=likes,
            counters=counters,
            throttle=throttle,
            clock=time.time,
            rate_likes=settings.rate_likes,
            max_page_size=settings.max_page_size,
        ),
        tweet_updates=tweet_updates,
    )
