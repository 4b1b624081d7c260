"""`python -m bench [graph|feeds|reads|reads-nginx|mixed|storm|soak|scaled|video|likes]
[--small]`: run benchmarks and print their figures (all of them by default; --small: smaller data
and shorter runs, for a quick look; the targets are stated for the full size).

graph: social-graph operations on socfb-Reed98 (962 people), both adapters.
feeds: fan-out, createTweet, feed misses and memory on a 110k-user power-law graph.
reads: the feed read path under wrk: full 20-tweet pages, server CPU per request, the floor
       without GraphQL, 1 vs 2 API processes, the raw Redis page read.
reads-nginx: the same feed reads through nginx, 1 API process vs 2 as two upstreams.
mixed: DeathStarBench-style mixed load on socfb-Reed98 (60% home feed, 30% user timeline,
       10% createTweet), 32 wrk connections: p99 and errors.
storm: a celebrity-profile read storm through nginx's micro-cache vs straight to the API.
soak:  60 s of mixed load against the embedded stack (SOAK_SECONDS to change it).
scaled: feed inserts on one master vs a 3-master cluster, fan-out with 1 vs 2 workers, graph
       replication lag under follow/unfollow writes.
video: processing time and peak memory of a 10 s 720p clip, remux path and transcode path.
likes: the like storm on one tweet (the counter alone, storage level, through the API) and the
       cost of counts and viewer state on a feed page.
The wrk figures need `wrk` (Debian package) and say they were skipped without it.
"""

import argparse
import asyncio
import os
import warnings

from bench import feeds, graph_ops, likes, mixed, read_nginx, read_path, scaled, soak, storm, video
from bench.seed import Shape

SMALL = Shape(users=11_000, top_audience=10_000, popular=2_000)
BENCHMARKS = [
    "graph",
    "feeds",
    "reads",
    "reads-nginx",
    "mixed",
    "storm",
    "soak",
    "scaled",
    "video",
    "likes",
]


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("which", nargs="*", choices=BENCHMARKS, default=BENCHMARKS)
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    if "graph" in args.which:
        print("== social graph (socfb-Reed98) ==")
        await graph_ops.run()
    if "feeds" in args.which:
        print("== home feeds (power-law graph) ==")
        await feeds.run(SMALL if args.small else Shape())
    if "reads" in args.which:
        print("== feed read path (wrk, floor, API processes) ==")
        await read_path.run(small=args.small)
    if "reads-nginx" in args.which:
        print("== feed reads through nginx (1 vs 2 API processes) ==")
        await read_nginx.run(small=args.small)
    if "mixed" in args.which:
        print("== mixed load (socfb-Reed98, DeathStarBench-style) ==")
        await mixed.run(small=args.small)
    if "storm" in args.which:
        print("== celebrity-profile storm (nginx micro-cache) ==")
        await storm.run(small=args.small)
    if "soak" in args.which:
        print("== soak (embedded stack) ==")
        await soak.run(float(os.environ.get("SOAK_SECONDS", 60)))
    if "scaled" in args.which:
        print("== scaled topology (cluster inserts, two workers, graph replication lag) ==")
        await scaled.run(small=args.small)
    if "video" in args.which:
        print("== video processing (10 s 720p: remux and transcode paths) ==")
        await video.run()
    if "likes" in args.which:
        print("== like storm and engagement on a feed page ==")
        await likes.run(small=args.small)


if __name__ == "__main__":
    warnings.simplefilter("ignore", ResourceWarning)  # the Bolt driver is abandoned on purpose
    asyncio.run(main())
