"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary_ms(samples: list[float]) -> str:
    """'p50 x ms, p99 y ms, mean z ms' of samples given in seconds."""
    return (
        f"p50 {percentile(samples, 0.50) * 1000:.2f} ms, "
        f"p99 {percentile(samples, 0.99) * 1000:.2f} ms, "
        f"mean {statistics.fmean(samples) * 1000:.2f} ms"
    )


async def timed(calls: list[Callable[[], Awaitable[object]]]) -> list[float]:
    """Run the calls one after another; their latencies in seconds."""
    samples = []
    for call in calls:
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples
