"""Media uploads: the first step of attaching images to a tweet."""

from __future__ import annotations

from resolvers.context import RequestContext
from schema.errors import BadUserInput
from storage.images import CONTENT_TYPES
from storage.media import Upload


async def create_media_upload(ctx: RequestContext, content_type: str, byte_size: int) -> Upload:
    """Record a pending upload, schedule its removal if it is never attached, and return a
    presigned PUT URL. What was uploaded is checked when a tweet attaches it."""
    services = ctx.services
    viewer = await ctx.viewer_id()
    if content_type not in CONTENT_TYPES:
        allowed = ", ".join(sorted(CONTENT_TYPES))
        raise BadUserInput(f"contentType must be one of {allowed}", field="contentType")
    limit = services.settings.media_max_bytes
    if not 1 <= byte_size <= limit:
        raise BadUserInput(f"byteSize must be between 1 and {limit}", field="byteSize")
    media_id = services.ids.next_id()
    await services.jobs.collect_orphan_media_later(
        viewer, media_id, services.settings.media_orphan_hours * 3600
    )
    return await services.media.start_upload(viewer, media_id, content_type, byte_size)
