"""Likes, engagement counts and the viewer's engagement state (rules: `social.engagement`)."""

from __future__ import annotations

from resolvers.context import RequestContext
from social.engagement import LikesPage
from storage.likes import LikeCursor, ViewerEngagement
from storage.tweet_cache import TweetRef
from storage.tweet_counts import TweetCounts
from storage.tweets import Tweet


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


async def counts(ctx: RequestContext, ref: TweetRef) -> TweetCounts:
    """Batched across a page through the context's DataLoader (primed by a feed page)."""
    return await ctx.tweet_counts.load(ref)


async def viewer_state(ctx: RequestContext, ref: TweetRef) -> ViewerEngagement:
    """Nothing liked or retweeted for anonymous callers; batched across a page (the token is
    checked once per batch, not per tweet)."""
    return await ctx.viewer_engagement.load(ref)
