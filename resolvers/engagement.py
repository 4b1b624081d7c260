"""Likes, engagement counts and the viewer's engagement state (rules: `social.engagement`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from strawberry.dataloader import DataLoader

from resolvers.context import RequestContext
from social.engagement import LikesPage
from storage.likes import LikeCursor
from storage.tweet_cache import TweetRef
from storage.tweets import Tweet

V = TypeVar("V")


async def like(ctx: RequestContext, author_id: int, tweet_id: int) -> Tweet:
    viewer = await ctx.viewer_id()
    return await ctx.services.engagement.like(viewer, author_id, tweet_id, ctx.load_tweets)


async def unlike(ctx: RequestContext, author_id: int, tweet_id: int) -> Tweet:
    viewer = await ctx.viewer_id()
    return await ctx.services.engagement.unlike(viewer, author_id, tweet_id, ctx.load_tweets)


async def likes(
    ctx: RequestContext, user_id: int, first: int, after: LikeCursor | None
) -> LikesPage:
    return await ctx.services.engagement.likes(user_id, first, after, ctx.load_tweets)


COUNT_FIELDS = {"replyCount", "retweetCount", "quoteCount", "likeCount"}
VIEWER_FIELDS = {"viewerHasLiked", "viewerHasRetweeted"}


def _known(loader: DataLoader[TweetRef, V], ref: TweetRef) -> V | None:
    """What this request's loader holds for `ref` already (no I/O), or None."""
    future = loader.cache_map.get(ref)
    if future is None or not future.done() or future.cancelled() or future.exception():
        return None
    return future.result()


def count(ctx: RequestContext, ref: TweetRef, name: str) -> int | Awaitable[int]:
    """One count of the tweet (`name`: a TweetCounts field): at once when this request has it
    (a feed page primes them; `prefetch` loads a page's), else batched through the loader. A
    plain value spares graphql-core a task per field, which cost more than the counts."""
    counts = _known(ctx.tweet_counts, ref)
    if counts is not None:
        return int(getattr(counts, name))
    return _count_later(ctx, ref, name)


async def _count_later(ctx: RequestContext, ref: TweetRef, name: str) -> int:
    return int(getattr(await ctx.tweet_counts.load(ref), name))


def viewer_state(ctx: RequestContext, ref: TweetRef, name: str) -> bool | Awaitable[bool]:
    """Whether the viewer liked (`name` "liked") or retweeted ("retweeted") the tweet, as
    `count` does; nothing for anonymous callers, the token checked once per batch."""
    state = _known(ctx.viewer_engagement, ref)
    if state is not None:
        return bool(getattr(state, name))
    return _viewer_state_later(ctx, ref, name)


async def _viewer_state_later(ctx: RequestContext, ref: TweetRef, name: str) -> bool:
    return bool(getattr(await ctx.viewer_engagement.load(ref), name))


async def prefetch(ctx: RequestContext, refs: list[TweetRef], fields: set[str]) -> None:
    """Load a page's counts and the viewer's state on it, if `fields` (the names selected under
    the page) ask for them, so that every tweet's fields then answer at once."""
    loads: list[Awaitable[object]] = []
    if fields & COUNT_FIELDS:
        loads.append(ctx.tweet_counts.load_many(refs))
    if fields & VIEWER_FIELDS:
        loads.append(ctx.viewer_engagement.load_many(refs))
    await asyncio.gather(*loads)
