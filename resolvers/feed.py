"""The home feed (rules: `social.feed`)."""

from __future__ import annotations

from resolvers.context import RequestContext
from social.feed import FeedResult
from storage.feeds import FeedRef


async def read_feed(ctx: RequestContext, first: int, after: FeedRef | None) -> FeedResult:
    """The token is confirmed with the page's documents (one round trip for both) or, when the
    read needs it earlier or loads nothing, on its own."""
    viewer = ctx.claimed_viewer_id()
    home_feed = ctx.services.home_feed
    return await home_feed.read(viewer, first, after, ctx.load_page, ctx.viewer_id)
