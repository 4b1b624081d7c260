"""Likes, engagement counts and the viewer's engagement state (rules: `social.engagement`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from typing import Any, TypeVar

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


class _Later:
    """A count or viewer flag this request has not loaded: graphql-core awaits it only if the
    client selected the field (each await loads through the request's batching loader)."""

    __slots__ = ("_ctx", "_name", "_ref")

    def __init__(self, ctx: RequestContext, ref: TweetRef, name: str) -> None:
        self._ctx, self._ref, self._name = ctx, ref, name

    def __await__(self) -> Generator[Any, None, int | bool]:
        return self._load().__await__()

    async def _load(self) -> int | bool:
        if self._name in VIEWER_STATE:
            return bool(getattr(await self._ctx.viewer_engagement.load(self._ref), self._name))
        return int(getattr(await self._ctx.tweet_counts.load(self._ref), self._name))


class _NotLoadable:
    """A TweetNode built without the request (TweetNode.of without `engagement`): a bug that
    must be loud (use schema.types.tweet_nodes), never a silent zero."""

    def __await__(self) -> Generator[Any, None, int]:
        raise RuntimeError("a Tweet built without its engagement: build it with tweet_nodes")


NOT_LOADABLE = _NotLoadable()
COUNTS = ("replies", "retweets", "quotes", "likes")
VIEWER_STATE = ("liked", "retweeted")


def node_engagement(ctx: RequestContext, ref: TweetRef) -> dict[str, object]:
    """The tweet's counts and the viewer's state by TweetCounts / ViewerEngagement field name:
    plain values where this request holds them (a page prefetches them: graphql-core then
    needs no task per field, which cost more than the counts), otherwise `_Later`."""
    values: dict[str, object] = {}
    counts = _known(ctx.tweet_counts, ref)
    for name in COUNTS:
        values[name] = _Later(ctx, ref, name) if counts is None else getattr(counts, name)
    state = _known(ctx.viewer_engagement, ref)
    for name in VIEWER_STATE:
        values[name] = _Later(ctx, ref, name) if state is None else getattr(state, name)
    return values


async def prefetch(ctx: RequestContext, refs: list[TweetRef], fields: set[str]) -> None:
    """Load a page's counts and the viewer's state on it, if `fields` (the names selected under
    the page) ask for them, so that every tweet's fields then answer at once."""
    loads: list[Awaitable[object]] = []
    if fields & COUNT_FIELDS:
        loads.append(ctx.tweet_counts.load_many(refs))
    if fields & VIEWER_FIELDS:
        loads.append(ctx.viewer_engagement.load_many(refs))
    await asyncio.gather(*loads)
