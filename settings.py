"""All configuration, read once from the environment at boot.

Every setting has a default that suits the embedded stack (`make run`), except the token secret,
which the embedded stack generates and keeps under ./var/. A bad value fails fast with the name of
the offending variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any


class SettingsError(ValueError):
    """An environment variable is missing or cannot be parsed."""


# Published, so good for a laptop only: refused unless APP_ENV=development says so explicitly.
DEVELOPMENT_JWT_SECRET = "development-only-secret-never-use-in-production"

# APP_ENV=development: limits that do not get in a developer's way (seeding accounts, tweets and
# follows from one machine); a variable that is set still wins. Production keeps the defaults.
DEVELOPMENT_DEFAULTS = {
    "RATE_TWEETS": "1000/60",
    "RATE_RETWEETS": "1000/60",
    "RATE_FOLLOWS": "1000/60",
    "RATE_LOGINS": "1000/300",
    "RATE_LOGINS_PER_ACCOUNT_IP": "1000/300",
    "RATE_LOGINS_PER_ACCOUNT": "1000/900",
    "RATE_SIGNUPS": "1000/3600",
    "RATE_MEDIA_UPLOADS": "1000/60",
    "RATE_LIKES": "1000/60",
    "RATE_MEDIA_COMPLETES": "1000/60",
}


def parse_rate(raw: str) -> tuple[int, int]:
    """'N/S' -> (N events, S seconds), both positive."""
    count, _, seconds = raw.partition("/")
    limit, window = int(count), int(seconds)
    if limit < 1 or window < 1:
        raise ValueError(f"expected N/S with positive numbers, got {raw!r}")
    return limit, window


def _as_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected a boolean, got {raw!r}")


_CASTS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _as_bool,
}


@dataclass(frozen=True)
class Settings:
    """Typed settings; field names are the environment variable names in lower case."""

    # Deployment
    # Strict unless told: "development" (the embedded stack sets it) allows the development
    # secret, the development limits (DEVELOPMENT_DEFAULTS) and /metrics without a token.
    app_env: str = "production"
    host: str = "127.0.0.1"
    port: int = 8000
    # API worker processes behind the port (uvicorn --workers); 0: one per core, at most 4.
    web_concurrency: int = 0
    graphiql_enabled: bool = True
    introspection_enabled: bool = True
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser
    trusted_proxies: str = ""  # comma-separated addresses/networks whose X-Forwarded-For counts
    metrics_token: str = ""  # /metrics wants "Authorization: Bearer <this>" (empty: off in prod)

    # Social graph
    graph_backend: str = "falkordb"
    falkordb_url: str = "redis://127.0.0.1:6380"
    graph_name: str = "social"
    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = ""
    neo4j_password: str = ""
    neo4j_database: str = ""  # empty: the server's default database
    graph_timeout_seconds: float = 5.0
    # A FalkorDB replica of FALKORDB_URL (empty: none): follow lists, counts, who-to-follow and
    # fan-out's follower pages read from it (GRAPH.RO_QUERY), falling back to the primary when
    # it does not answer (and skipping it for FALKORDB_REPLICA_RETRY_SECONDS after that); reads
    # about a user whose follows changed in the last FALKORDB_REPLICA_FRESH_MS go to the
    # primary (read-your-writes: keep it well above the replication lag).
    falkordb_replica_url: str = ""
    falkordb_replica_fresh_ms: int = 5000
    falkordb_replica_retry_seconds: float = 5.0

    # Redis roles (one server may hold several in the embedded default)
    documents_redis_url: str = "redis://127.0.0.1:6379/0"
    documents_redis_cluster: bool = False  # true: the URL names one node of a Redis Cluster
    broker_redis_url: str = "redis://127.0.0.1:6379/0"
    feed_redis_url: str = "redis://127.0.0.1:6379/0"  # evictable: feeds carry a TTL
    feed_redis_cluster: bool = False  # true: FEED_REDIS_URL names one node of a Redis Cluster
    redis_timeout_seconds: float = 2.0

    # Jobs (Dramatiq): when a silent worker counts as dead, and how often queues are checked for
    # its messages (per million broker commands)
    broker_heartbeat_timeout_ms: int = 15_000
    broker_maintenance_chance: int = 10_000
    worker_idle_poll_ms: int = 100  # an idle worker polls its queues this often

    # Accounts and tokens
    jwt_secret: str = DEVELOPMENT_JWT_SECRET
    token_ttl_seconds: int = 7 * 24 * 3600
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 64 * 1024
    argon2_parallelism: int = 2
    signup_claim_grace_seconds: int = 300

    # Tweets
    tweet_cache_size: int = 10_000  # hot tweets kept per API process
    tweet_cache_ttl_seconds: float = 60.0
    idempotency_ttl_seconds: int = 24 * 3600
    # createTweet is acknowledged only once this many replicas of the author's shard confirmed
    # it (WAIT), within TWEET_DURABLE_TIMEOUT_MS; else it is undone and fails with
    # SERVICE_UNAVAILABLE (retry with the same idempotencyKey). 0: no waiting.
    tweet_durable_replicas: int = 0
    tweet_durable_timeout_ms: int = 500

    # Home feeds
    feed_max: int = 800  # entries kept per feed
    active_days: int = 30  # a feed unread this long expires: its owner is inactive
    celebrity_followers: int = 100_000  # above this, an author is merged at read time
    celebrity_hysteresis: float = 0.9  # ...and stays a celebrity until below this fraction
    celebrities_merged_per_read: int = 20
    celebrity_refresh_seconds: float = 1.5
    fanout_page_size: int = 100_000  # followers read from the graph per query (sorted: O(all))
    fanout_batch_size: int = 1_000  # followers per delivery message
    follow_merge_tweets: int = 50  # a new followee's newest tweets put into the feed at once
    presence_ttl_seconds: int = 60

    # Media
    media_backend: str = "local"  # "local" (a folder, served by the app) or "s3"
    media_local_dir: str = "var/media"
    public_api_url: str = "http://127.0.0.1:8000"  # where clients reach this app (local uploads)
    cdn_base_url: str = "http://127.0.0.1:8000/media"  # public media URL = this + "/" + key
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "media"
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    media_max_bytes: int = 5 * 1024 * 1024
    media_max_pixels: int = 40_000_000  # the whole image: frames x width x height
    media_max_frames: int = 100  # frames of an animated image
    media_verify_memory_mb: int = 1536  # address space of one image-verification process
    media_verify_cpu_seconds: int = 10  # CPU time of one image-verification process
    media_verify_timeout_seconds: float = 20.0  # wall clock, then it is killed
    media_verify_concurrency: int = 2  # verification processes at once per API process
    media_upload_url_ttl_seconds: int = 900
    media_orphan_hours: float = 1.0  # an unattached upload expires and is deleted after this
    media_max_pending_bytes: int = 25 * 1024 * 1024  # declared bytes of a user's unattached uploads
    # Video (Twitter's limits): the upload, what the video may be, and its processing by a
    # worker (queue `video`) in a child process with these limits
    video_max_bytes: int = 512 * 1024 * 1024
    video_max_seconds: float = 140.0
    # The longer and the shorter side, in either orientation: a portrait 1200x1920 fits, and a
    # display rotation (a quarter turn swaps width and height) changes nothing.
    video_max_width: int = 1920  # the longer side
    video_max_height: int = 1200  # the shorter side
    video_max_fps: float = 60.0
    video_max_pending_bytes: int = 1024 * 1024 * 1024  # declared bytes of unattached videos
    video_multipart_threshold_bytes: int = 64 * 1024 * 1024  # larger uploads go in parts
    video_multipart_part_bytes: int = 16 * 1024 * 1024  # at least 5 MiB (S3)
    video_process_memory_mb: int = 2048  # address space of one processing child
    video_process_cpu_seconds: int = 900
    video_process_timeout_seconds: float = 1200.0  # wall clock, then the child is killed
    video_process_concurrency: int = 1  # processing children at once per worker process
    video_process_max_attempts: int = 3  # leases taken (worker deaths) before FAILED
    video_lease_seconds: float = 30.0  # a processing lease, renewed every third of it

    token_recheck_seconds: float = 30.0  # open WebSockets re-check their token this often

    # Limits
    max_following: int = 5000
    max_page_size: int = 100
    max_query_depth: int = 12
    max_aliases: int = 30
    max_query_tokens: int = 2000  # lexical tokens in one operation: bounds parse and complexity
    max_query_bytes: int = 20_000
    max_body_bytes: int = 100_000  # GraphQL request bodies and WebSocket messages
    max_query_cost: int = 5000  # static cost: a list field costs its `first` times its selection
    max_query_cost_anonymous: int = 1000  # the same without a valid token
    max_graph_calls_per_request: int = 4  # graph calls one operation may have in flight
    max_ws_connections_per_user: int = 5  # over all API processes

    # HTTP caching: an anonymous GET of a query that succeeded may be kept by shared caches
    # (nginx's micro-cache) this long (0: never; everything else is always no-store)
    public_cache_seconds: int = 5
    # Automatic persisted queries: operation texts kept per API process, by count and bytes
    # (APQ_CACHE_SIZE=0 turns persisted queries off: clients are told they are not supported)
    apq_cache_size: int = 1000
    apq_cache_bytes: int = 8 * 1024 * 1024

    # Rate limits: "N/S" = at most N in any S seconds (sliding window, kept in the feed Redis)
    rate_tweets: str = "30/60"  # per user
    rate_retweets: str = "60/60"  # per user, retweets and undos together
    rate_follows: str = "60/60"  # per user, follows and unfollows together
    rate_logins: str = "10/300"  # failed log-ins per client IP
    rate_logins_per_account_ip: str = "5/300"  # failed log-ins per (username, client IP)
    # Failed log-ins of one account from any address past which its attempts are slowed (never
    # refused: the owner's right password must work while others guess)...
    rate_logins_per_account: str = "5/900"
    login_delay_max_seconds: float = 10.0  # ...by a delay doubling from 1 s up to this
    rate_signups: str = "5/3600"  # per IP
    rate_media_uploads: str = "30/60"  # createMediaUpload per user
    # Engagement (issue 12): likes and unlikes per user (retweets: RATE_RETWEETS; replies and
    # quotes are tweets: RATE_TWEETS); tweetUpdates watches 1..TWEET_UPDATES_MAX_IDS tweets and
    # sends each at most once per TWEET_UPDATES_INTERVAL_SECONDS (API processes publish a
    # tweet's counts as often)
    rate_likes: str = "300/60"
    tweet_updates_max_ids: int = 100
    tweet_updates_interval_seconds: float = 1.0
    rate_media_completes: str = "60/60"  # completeMediaUpload per user

    def __post_init__(self) -> None:
        if self.web_concurrency < 0:
            raise SettingsError(
                f"WEB_CONCURRENCY: expected 0 (auto) or more: {self.web_concurrency}"
            )
        if self.graph_backend not in {"falkordb", "neo4j"}:
            raise SettingsError(
                f"GRAPH_BACKEND: expected falkordb or neo4j, not {self.graph_backend!r}"
            )
        if self.media_backend not in {"local", "s3"}:
            raise SettingsError(f"MEDIA_BACKEND: expected local or s3: {self.media_backend!r}")
        if self.app_env not in {"development", "production"}:
            raise SettingsError(f"APP_ENV: expected development or production: {self.app_env!r}")
        if len(self.jwt_secret) < 32:
            raise SettingsError("JWT_SECRET must be at least 32 characters")
        if self.jwt_secret == DEVELOPMENT_JWT_SECRET and self.app_env != "development":
            raise SettingsError(
                "JWT_SECRET: set a secret of your own (32+ characters); the published "
                "development secret is accepted only with APP_ENV=development"
            )
        if self.tweet_durable_replicas > 0 and not (
            0 < self.tweet_durable_timeout_ms < self.redis_timeout_seconds * 1000
        ):
            raise SettingsError(
                "TWEET_DURABLE_TIMEOUT_MS must be positive and below REDIS_TIMEOUT_SECONDS "
                f"(the client would give up on the WAIT first): {self.tweet_durable_timeout_ms}"
            )
        for name in (
            "public_cache_seconds",
            "apq_cache_size",
            "apq_cache_bytes",
            "tweet_durable_replicas",
            "falkordb_replica_fresh_ms",
            "falkordb_replica_retry_seconds",
            "tweet_updates_interval_seconds",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name.upper()} must not be negative")
        for name in (
            "video_max_bytes",
            "video_max_seconds",
            "video_max_width",
            "video_max_height",
            "video_max_fps",
            "video_max_pending_bytes",
            "video_process_memory_mb",
            "video_process_cpu_seconds",
            "video_process_timeout_seconds",
            "video_process_concurrency",
            "video_process_max_attempts",
            "video_lease_seconds",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name.upper()} must be positive")
        if self.video_multipart_part_bytes < 5 * 1024 * 1024:
            raise SettingsError("VIDEO_MULTIPART_PART_BYTES must be at least 5 MiB (5242880)")
        if self.video_multipart_threshold_bytes < self.video_multipart_part_bytes:
            raise SettingsError(
                "VIDEO_MULTIPART_THRESHOLD_BYTES must be at least VIDEO_MULTIPART_PART_BYTES"
            )
        if self.video_max_height > self.video_max_width:
            raise SettingsError("VIDEO_MAX_HEIGHT (the shorter side) exceeds VIDEO_MAX_WIDTH")
        if self.tweet_updates_max_ids < 1:
            raise SettingsError("TWEET_UPDATES_MAX_IDS must be at least 1")
        for name in (f.name for f in fields(self) if f.name.startswith("rate_")):
            try:
                parse_rate(getattr(self, name))
            except ValueError as exc:
                raise SettingsError(f"{name.upper()}: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: os.environ); unknown variables are ignored.
        With APP_ENV=development, DEVELOPMENT_DEFAULTS fill in what is not set."""
        environ = os.environ if environ is None else environ
        if environ.get("APP_ENV") == "development":
            environ = {**DEVELOPMENT_DEFAULTS, **environ}
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = field.name.upper()
            if name not in environ:
                continue
            cast = _CASTS[field.type if isinstance(field.type, str) else field.type.__name__]
            try:
                values[field.name] = cast(environ[name])
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from exc
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings in a child process."""
        return {f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def names(cls) -> set[str]:
        """The environment variable names this class reads."""
        return {field.name.upper() for field in fields(cls)}
