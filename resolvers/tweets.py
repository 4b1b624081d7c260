"""Create, delete and read tweets (rules: `social.posting`)."""

from __future__ import annotations

from resolvers.context import RequestContext
from social.visibility import shown
from storage.tweets import TimelinePage, Tweet


async def create_tweet(
    ctx: RequestContext,
    text: str,
    media_refs: list[tuple[int, int]],
    idempotency_key: str | None,
) -> Tweet:
    viewer = await ctx.viewer_id()
    posting = ctx.services.posting
    return await posting.create(viewer, text, media_refs, idempotency_key, ctx.load_tweets)


async def delete_tweet(ctx: RequestContext, author_id: int, tweet_id: int) -> None:
    await ctx.services.posting.delete(await ctx.viewer_id(), author_id, tweet_id)


async def visible_tweet(ctx: RequestContext, author_id: int, tweet_id: int) -> Tweet | None:
    tweet = await ctx.tweets.load((author_id, tweet_id))
    return tweet if tweet is not None and shown(tweet) else None


async def timeline(
    ctx: RequestContext, author_id: int, first: int, before: int | None
) -> tuple[list[Tweet], TimelinePage]:
    """A page of the author's tweets, newest first, and the page of ids it came from."""
    return await ctx.services.posting.timeline(author_id, first, before, ctx.load_tweets)
