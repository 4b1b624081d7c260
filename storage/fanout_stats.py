"""What fan-out workers record, so the API's /metrics and the benchmarks can read it.

Keys (in the feed Redis; this module is their only writer):
  fanout:log        stream, one entry per delivered batch: tweet id, followers in the batch,
                    feeds that gained the tweet, finish time (ms). Capped at LOG_MAX entries.
  fanout:stats      hash of counters: batches, feeds_considered, inserts.
  fanout:lag_ms     hash: histogram of (batch finish - tweet creation) in ms, by bucket bound.
Each command touches one key; on a cluster the three may sit on different nodes, and a batch's
record is one pipeline that the client splits per node (sent concurrently).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from storage.ids import id_time_ms
from storage.redis_clients import FeedRedis, reply_bytes

LOG_KEY = "fanout:log"
STATS_KEY = "fanout:stats"
LAG_KEY = "fanout:lag_ms"
LOG_MAX = 200_000
LAG_BUCKETS_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)


@dataclass(frozen=True)
class BatchRecord:
    tweet_id: int
    followers: int
    inserted: int
    finished_ms: int


def lag_bucket(lag_ms: int) -> str:
    for bound in LAG_BUCKETS_MS:
        if lag_ms <= bound:
            return str(bound)
    return "+Inf"


class FanoutStats:
    def __init__(self, client: FeedRedis) -> None:
        self._redis = client

    async def record_batch(self, tweet_id: int, followers: int, inserted: int) -> None:
        finished_ms = int(time.time() * 1000)
        lag = max(0, finished_ms - id_time_ms(tweet_id))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(
                LOG_KEY,
                {
                    "tweet": tweet_id,
                    "followers": followers,
                    "inserted": inserted,
                    "at": finished_ms,
                },
                maxlen=LOG_MAX,
                approximate=True,
            )
            pipe.hincrby(STATS_KEY, "batches", 1)
            pipe.hincrby(STATS_KEY, "feeds_considered", followers)
            pipe.hincrby(STATS_KEY, "inserts", inserted)
            pipe.hincrby(LAG_KEY, lag_bucket(lag), followers)
            await pipe.execute()

    async def batches_of(self, tweet_id: int) -> list[BatchRecord]:
        """Every logged batch of one tweet (benchmarks; scans the log)."""
        records = []
        # redis-py types the reply and each entry's fields as optional; XRANGE gives neither.
        for _, fields in await self._redis.xrange(LOG_KEY) or []:
            if fields is not None and int(fields[b"tweet"]) == tweet_id:
                records.append(
                    BatchRecord(
                        tweet_id,
                        int(fields[b"followers"]),
                        int(fields[b"inserted"]),
                        int(fields[b"at"]),
                    )
                )
        return records

    async def counters(self) -> tuple[dict[str, int], dict[str, int]]:
        """(counters, lag histogram by bucket) for /metrics."""
        stats = await self._redis.hgetall(STATS_KEY)
        lag = await self._redis.hgetall(LAG_KEY)
        return (
            {reply_bytes(k).decode(): int(v) for k, v in stats.items()},
            {reply_bytes(k).decode(): int(v) for k, v in lag.items()},
        )
