"""What the domain needs from outside that is not a store: the background job queue.

`fanout.jobs.Jobs` implements it on Dramatiq; the domain only says what should happen later.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class FanoutAction(StrEnum):
    """What a fan-out pass delivers to an author's followers."""

    PUSH = "push"  # a new tweet into their feeds
    UNPUSH = "unpush"  # a deleted tweet out of them
    REFLAG = "reflag"  # the author's celebrity flag changed: drop their cached followee sets


class JobQueue(Protocol):
    """Background work, queued now and run by a worker. Every job is idempotent."""

    async def fan_out(
        self, author_id: int, tweet_id: int, action: FanoutAction, after: int | None = None
    ) -> None:
        """A fan-out pass over the author's followers, from the follower after `after`."""

    async def deliver(
        self, author_id: int, tweet_id: int, follower_ids: list[int], action: FanoutAction
    ) -> None:
        """One batch of a fan-out pass."""

    async def reconcile(self, follower_id: int, followee_id: int) -> None:
        """The clean-up of a follower's feed after an unfollow."""

    async def collect_unclaimed_account_later(
        self, user_id: int, username: str, delay_seconds: int
    ) -> None:
        """Removal of a sign-up that never claimed its name, after `delay_seconds`."""

    async def purge_tweet_media(self, author_id: int, tweet_id: int) -> None:
        """Deletion of a deleted tweet's media."""

    async def collect_orphan_media_later(
        self, owner_id: int, media_id: int, delay_seconds: float
    ) -> None:
        """Removal of an upload that no tweet attached, when it expires."""

    async def process_video(self, owner_id: int, media_id: int) -> None:
        """Processing of an uploaded video (its own queue: it never delays fan-out)."""
