"""`python -m bench`: run every benchmark and print its figures."""

import asyncio
import warnings

from bench import graph_ops


async def main() -> None:
    print("== social graph (socfb-Reed98) ==")
    await graph_ops.run()


if __name__ == "__main__":
    warnings.simplefilter("ignore", ResourceWarning)  # the Bolt driver is abandoned on purpose
    asyncio.run(main())
