"""Media uploads: the first step of attaching images to a tweet."""

from __future__ import annotations

import math

from social.errors import InvalidInput, TooManyAttempts
from social.ports import JobQueue
from social.throttle import Throttle
from storage.ids import IdGenerator
from storage.images import CONTENT_TYPES
from storage.media import MediaLibrary, Upload, UploadQuotaExceeded


class Uploads:
    """Uploads of at most `max_bytes`, `rate` ("N/S") per user, and at most
    `max_pending_bytes` of a user's uploads unattached at once."""

    def __init__(
        self,
        *,
        media: MediaLibrary,
        ids: IdGenerator,
        jobs: JobQueue,
        throttle: Throttle,
        max_bytes: int,
        max_pending_bytes: int,
        rate: str,
    ) -> None:
        self._media = media
        self._ids = ids
        self._jobs = jobs
        self._throttle = throttle
        self._max_bytes = max_bytes
        self._max_pending_bytes = max_pending_bytes
        self._rate = rate

    async def start(self, owner: int, content_type: str, byte_size: int) -> Upload:
        """Record a pending upload, schedule its removal if it is never attached, and return a
        presigned PUT URL. What was uploaded is checked when a tweet attaches it. Unattached
        uploads expire after `MEDIA_ORPHAN_HOURS`, so nobody can fill the storage with uploads
        nothing uses."""
        if content_type not in CONTENT_TYPES:
            allowed = ", ".join(sorted(CONTENT_TYPES))
            raise InvalidInput(f"contentType must be one of {allowed}", field="contentType")
        if not 1 <= byte_size <= self._max_bytes:
            raise InvalidInput(
                f"byteSize must be between 1 and {self._max_bytes}", field="byteSize"
            )
        await self._throttle.charge("media_upload", owner, self._rate)
        media_id = self._ids.next_id()
        # Queued first, so that no record can outlive its expiry for want of a clean-up job.
        await self._jobs.collect_orphan_media_later(owner, media_id, self._media.expiry_seconds)
        try:
            return await self._media.start_upload(owner, media_id, content_type, byte_size)
        except UploadQuotaExceeded as exc:
            retry_after = math.ceil(exc.retry_after_seconds)
            raise TooManyAttempts(
                f"your unattached uploads already hold up to {self._max_pending_bytes} "
                f"bytes; attach or wait for them to expire (in {retry_after} s)",
                retryAfter=retry_after,
            ) from None
