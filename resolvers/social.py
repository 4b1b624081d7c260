"""Follow, unfollow, follow lists and suggestions, on behalf of the authenticated viewer."""

from __future__ import annotations

import time

from graph.port import (
    CannotFollowSelf,
    EdgeCursor,
    EdgePage,
    FollowLimitReached,
    Suggestion,
    UnknownUser,
)
from resolvers.context import RequestContext
from resolvers.limits import enforce
from schema.errors import BadUserInput, NotFound
from storage.feeds import FeedRef


def page_size(ctx: RequestContext, first: int) -> int:
    """`first` if within 1..MAX_PAGE_SIZE, else BAD_USER_INPUT."""
    limit = ctx.services.settings.max_page_size
    if not 1 <= first <= limit:
        raise BadUserInput(f"first must be between 1 and {limit}", field="first")
    return first


async def follow(ctx: RequestContext, followee_id: int) -> int:
    """Make the viewer follow `followee_id`; returns the followee's id. Idempotent."""
    services = ctx.services
    viewer = await ctx.viewer_id()
    await enforce(ctx, "follow", viewer, services.settings.rate_follows)
    try:
        await services.graph.follow(viewer, followee_id, at_ms=int(time.time() * 1000))
    except CannotFollowSelf:
        raise BadUserInput("you cannot follow yourself", field="userId") from None
    except UnknownUser:
        raise NotFound("no such user", field="userId") from None
    except FollowLimitReached:
        limit = ctx.services.settings.max_following
        raise BadUserInput(f"you already follow the maximum of {limit} accounts") from None
    await services.feeds.invalidate_following(viewer)
    await merge_recent_tweets(ctx, viewer, followee_id)
    return followee_id


async def merge_recent_tweets(ctx: RequestContext, viewer: int, followee_id: int) -> None:
    """Put the new followee's recent tweets into the viewer's feed right away (if the viewer
    has a feed; celebrities' tweets are merged at read time anyway)."""
    services = ctx.services
    per_author = services.settings.follow_merge_tweets
    recent = await services.tweets.recent_tweet_ids([followee_id], per_author)
    refs = [FeedRef(tweet_id, followee_id) for tweet_id in recent[followee_id]]
    if refs:
        await services.feeds.merge_into_feed(viewer, refs)


async def unfollow(ctx: RequestContext, followee_id: int) -> int:
    """Make the viewer stop following `followee_id`; returns the followee's id. Idempotent."""
    viewer = await ctx.viewer_id()
    if viewer == followee_id:
        raise BadUserInput("you cannot unfollow yourself", field="userId")
    services = ctx.services
    await enforce(ctx, "follow", viewer, services.settings.rate_follows)
    try:
        await services.graph.unfollow(viewer, followee_id)
    except UnknownUser:
        raise NotFound("no such user", field="userId") from None
    # Reads stop showing the followee at once (the followee set is dropped); the job only
    # reclaims the feed space.
    await services.feeds.invalidate_following(viewer)
    await services.jobs.reconcile(viewer, followee_id)
    return followee_id


async def followers(
    ctx: RequestContext, user_id: int, first: int, after: EdgeCursor | None
) -> EdgePage:
    return await ctx.services.graph.followers_page(user_id, page_size(ctx, first), after)


async def following(
    ctx: RequestContext, user_id: int, first: int, after: EdgeCursor | None
) -> EdgePage:
    return await ctx.services.graph.following_page(user_id, page_size(ctx, first), after)


async def who_to_follow(ctx: RequestContext, first: int) -> list[Suggestion]:
    viewer = await ctx.viewer_id()
    return await ctx.services.graph.who_to_follow(viewer, page_size(ctx, first))


async def viewer_is_following(ctx: RequestContext, user_id: int) -> bool:
    """False for anonymous callers; batched across a page through the context's DataLoader."""
    if await ctx.optional_viewer_id() is None:
        return False
    return await ctx.viewer_follows.load(user_id)
