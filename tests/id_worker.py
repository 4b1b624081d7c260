"""Child process for test_ids: lease a worker number, print N ids, one per line."""

import asyncio
import sys

from storage.ids import IdGenerator
from storage.redis_clients import open_redis


async def main(url: str, count: int) -> None:
    client = open_redis(url, timeout_seconds=5)
    generator = IdGenerator(client)
    await generator.start()
    try:
        sys.stdout.write("\n".join(str(generator.next_id()) for _ in range(count)) + "\n")
    finally:
        await generator.stop()
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
