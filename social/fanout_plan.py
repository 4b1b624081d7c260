"""Pure decisions of the fan-out: who is a celebrity, and how an audience splits into messages."""

from __future__ import annotations

import json


def celebrity_flag(followers: int, flagged: bool, threshold: int, hysteresis: float) -> bool:
    """An author becomes a celebrity above `threshold` followers and stays one until below
    `threshold * hysteresis`, so an account near the line does not flip on every tweet."""
    if flagged:
        return followers >= threshold * hysteresis
    return followers > threshold


def batches(ids: list[int], size: int) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def live_event(
    kind: str, author_id: int, tweet_id: int, original: tuple[int, int] | None = None
) -> str:
    """What subscribers receive on their live channel: `tweet` (new in your feed) or `deleted`;
    for a retweet entry, `original` (author id, tweet id) names what it shows."""
    event: dict[str, object] = {"kind": kind, "author_id": author_id, "tweet_id": tweet_id}
    if original is not None:
        event["original"] = list(original)
    return json.dumps(event)
