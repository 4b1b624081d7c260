"""Redis-backed stores, each the only writer of the keys its module docstring lists.

Documents Redis (sharded by author; a cluster in production): ids.py (snowflake ids, worker
leases), accounts.py, tweets.py (documents and timelines), media.py (media records; objects via
object_store.py). Feed Redis (evictable; one server or a cluster; clients from
redis_clients.open_feed_redis): feeds.py (home feeds), followee_sets.py, rebuild_locks.py,
presence.py (presence, live slots and the live channel names), live_hub.py (the per-process
pub/sub fan-in), fanout_stats.py, rate_limits.py. Either role: pubsub.py (plain pub/sub on one
server, sharded on a cluster). In-process: tweet_cache.py, celebrity_timelines.py,
feed_builder.py. Lua scripts live in lua/, one file per script.
"""
