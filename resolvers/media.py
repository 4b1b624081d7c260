"""Media uploads: the first step of attaching images to a tweet."""

from __future__ import annotations

import math

from resolvers.context import RequestContext
from resolvers.limits import enforce
from schema.errors import BadUserInput, RateLimited
from storage.images import CONTENT_TYPES
from storage.media import Upload, UploadQuotaExceeded


async def create_media_upload(ctx: RequestContext, content_type: str, byte_size: int) -> Upload:
    """Record a pending upload, schedule its removal if it is never attached, and return a
    presigned PUT URL. What was uploaded is checked when a tweet attaches it. Rate-limited per
    user, and a user's unattached uploads are bounded in bytes (they expire after
    `MEDIA_ORPHAN_HOURS`), so nobody can fill the storage with uploads nothing uses."""
    services = ctx.services
    settings = services.settings
    viewer = await ctx.viewer_id()
    if content_type not in CONTENT_TYPES:
        allowed = ", ".join(sorted(CONTENT_TYPES))
        raise BadUserInput(f"contentType must be one of {allowed}", field="contentType")
    limit = settings.media_max_bytes
    if not 1 <= byte_size <= limit:
        raise BadUserInput(f"byteSize must be between 1 and {limit}", field="byteSize")
    await enforce(ctx, "media_upload", viewer, settings.rate_media_uploads)
    media_id = services.ids.next_id()
    # Queued first, so that no record can outlive its expiry for want of a clean-up job.
    await services.jobs.collect_orphan_media_later(viewer, media_id, services.media.expiry_seconds)
    try:
        upload = await services.media.start_upload(viewer, media_id, content_type, byte_size)
    except UploadQuotaExceeded as exc:
        retry_after = math.ceil(exc.retry_after_seconds)
        raise RateLimited(
            f"your unattached uploads already hold up to {settings.media_max_pending_bytes} "
            f"bytes; attach or wait for them to expire (in {retry_after} s)",
            retryAfter=retry_after,
        ) from None
    return upload
