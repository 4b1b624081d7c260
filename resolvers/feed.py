"""The home feed (rules: `social.feed`)."""

from __future__ import annotations

from resolvers.context import RequestContext
from social.feed import FeedResult
from storage.feeds import FeedRef


async def read_feed(ctx: RequestContext, first: int, after: FeedRef | None) -> FeedResult:
    viewer = await ctx.viewer_id()
    return await ctx.services.home_feed.read(viewer, first, after, ctx.load_tweets)
