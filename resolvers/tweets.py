"""Create, delete and read tweets (rules: `social.posting`)."""

from __future__ import annotations

from resolvers.context import RequestContext
from social.targets import resolve
from social.visibility import Shown, shown
from storage.tweets import TimelinePage, Tweet, TweetId


async def create_tweet(
    ctx: RequestContext,
    text: str,
    media_refs: list[tuple[int, int]],
    idempotency_key: str | None,
    in_reply_to: TweetId | None = None,
    quote_of: TweetId | None = None,
) -> Tweet:
    viewer = await ctx.viewer_id()
    posting = ctx.services.posting
    return await posting.create(
        viewer, text, media_refs, idempotency_key, ctx.load_tweets, in_reply_to, quote_of
    )


async def retweet(ctx: RequestContext, target: TweetId) -> Tweet:
    """The original retweeted."""
    return await ctx.services.retweeting.retweet(await ctx.viewer_id(), target)


async def undo_retweet(ctx: RequestContext, target: TweetId) -> TweetId:
    """The original whose retweet was undone."""
    return await ctx.services.retweeting.undo(await ctx.viewer_id(), target)


async def replies(
    ctx: RequestContext, parent: TweetId, first: int, after: TweetId | None
) -> tuple[list[Tweet], bool, TweetId | None]:
    return await ctx.services.posting.replies(parent, first, after, ctx.load_tweets)


async def linked_tweet(ctx: RequestContext, ref: TweetId) -> Tweet | None:
    """A tweet another one points at (answers, quotes), through the request's loader: None if
    it is gone."""
    return await visible_tweet(ctx, *ref)


async def delete_tweet(ctx: RequestContext, author_id: int, tweet_id: int) -> None:
    await ctx.services.posting.delete(await ctx.viewer_id(), author_id, tweet_id)


async def visible_tweet(ctx: RequestContext, author_id: int, tweet_id: int) -> Tweet | None:
    """The live tweet an id names (a live retweet's id names its original: social.targets)."""
    tweet = await resolve(ctx.load_tweets, (author_id, tweet_id))
    return tweet if tweet is not None and shown(tweet) else None


async def timeline(
    ctx: RequestContext, author_id: int, first: int, before: int | None
) -> tuple[list[tuple[int, Shown]], TimelinePage]:
    """A page of the author's tweets, newest first, and the page of ids it came from."""
    return await ctx.services.posting.timeline(author_id, first, before, ctx.load_tweets)
