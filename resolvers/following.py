"""Follow, unfollow, follow lists and suggestions (rules: `social.following`)."""

from __future__ import annotations

from graph.port import EdgeCursor, EdgePage, Suggestion
from resolvers.context import RequestContext


async def follow(ctx: RequestContext, followee_id: int) -> int:
    """Make the viewer follow `followee_id`; returns the followee's id. Idempotent."""
    await ctx.services.following.follow(await ctx.viewer_id(), followee_id)
    return followee_id


async def unfollow(ctx: RequestContext, followee_id: int) -> int:
    """Make the viewer stop following `followee_id`; returns the followee's id. Idempotent."""
    await ctx.services.following.unfollow(await ctx.viewer_id(), followee_id)
    return followee_id


async def followers(
    ctx: RequestContext, user_id: int, first: int, after: EdgeCursor | None
) -> EdgePage:
    return await ctx.services.following.followers(user_id, first, after)


async def following(
    ctx: RequestContext, user_id: int, first: int, after: EdgeCursor | None
) -> EdgePage:
    return await ctx.services.following.following(user_id, first, after)


async def who_to_follow(ctx: RequestContext, first: int) -> list[Suggestion]:
    return await ctx.services.following.who_to_follow(await ctx.viewer_id(), first)


async def viewer_is_following(ctx: RequestContext, user_id: int) -> bool:
    """False for anonymous callers; batched across a page through the context's DataLoader."""
    if await ctx.optional_viewer_id() is None:
        return False
    return await ctx.viewer_follows.load(user_id)
