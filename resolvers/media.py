"""Media uploads (rules: `social.uploads`)."""

from __future__ import annotations

from resolvers.context import RequestContext
from storage.media import Upload


async def create_media_upload(ctx: RequestContext, content_type: str, byte_size: int) -> Upload:
    return await ctx.services.uploads.start(await ctx.viewer_id(), content_type, byte_size)
