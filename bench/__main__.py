"""`python -m bench [graph|feeds|soak] [--small]`: run benchmarks and print their figures.

graph: social-graph operations on socfb-Reed98 (962 people), both adapters.
feeds: fan-out, createTweet, feed reads, misses and memory on a 110k-user power-law graph
       (--small: 11k users, for a quick look; the targets are stated for the full size).
soak:  60 s of mixed load against the embedded stack (SOAK_SECONDS to change it).
"""

import argparse
import asyncio
import os
import warnings

from bench import feeds, graph_ops, soak
from bench.seed import Shape

SMALL = Shape(users=11_000, top_audience=10_000, popular=2_000)


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "which", nargs="*", choices=["graph", "feeds", "soak"], default=["graph", "feeds", "soak"]
    )
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    if "graph" in args.which:
        print("== social graph (socfb-Reed98) ==")
        await graph_ops.run()
    if "feeds" in args.which:
        print("== home feeds (power-law graph) ==")
        await feeds.run(SMALL if args.small else Shape())
    if "soak" in args.which:
        print("== soak (embedded stack) ==")
        await soak.run(float(os.environ.get("SOAK_SECONDS", 60)))


if __name__ == "__main__":
    warnings.simplefilter("ignore", ResourceWarning)  # the Bolt driver is abandoned on purpose
    asyncio.run(main())
