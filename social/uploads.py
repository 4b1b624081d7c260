"""Media uploads: the first step of attaching images or a video to a tweet; a video's
completion, state and upload parts."""

from __future__ import annotations

import math

from social.errors import InvalidInput, MediaMissing, MediaUnusable, NotPermitted, TooManyAttempts
from social.ports import JobQueue
from social.throttle import Throttle
from storage.ids import IdGenerator
from storage.images import CONTENT_TYPES
from storage.media import (
    MediaError,
    MediaInvalid,
    MediaLibrary,
    MediaNotFound,
    MediaStatus,
    Upload,
    UploadQuotaExceeded,
    is_video,
)
from storage.videos import CONTENT_TYPES as VIDEO_CONTENT_TYPES


def own_media(viewer: int, ref: tuple[int, int]) -> int:
    """The media id of an (owner, media id) ref, if the viewer is its owner."""
    owner, media_id = ref
    if owner != viewer:
        raise NotPermitted("only the uploader can see or change this media", field="id")
    return media_id


def _refused(owner: int, exc: MediaError) -> MediaMissing | MediaUnusable:
    """The refusal of an operation on one media item, whose argument is `id`."""
    if isinstance(exc, MediaNotFound):
        return MediaMissing(owner, exc.media_id, exc.reason, field="id")
    return MediaUnusable(owner, exc.media_id, exc.reason, field="id")


class Uploads:
    """Uploads of at most `max_bytes` (`video_max_bytes` for a video), `rate` ("N/S") per
    user (completions: `complete_rate`), and at most `max_pending_bytes` of a user's uploads
    unattached at once (videos have their own quota, in the media library)."""

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
        complete_rate: str,
    ) -> None:
        self._media = media
        self._ids = ids
        self._jobs = jobs
        self._throttle = throttle
        self._max_bytes = max_bytes
        self._max_pending_bytes = max_pending_bytes
        self._rate = rate
        self._complete_rate = complete_rate

    async def start(self, owner: int, content_type: str, byte_size: int) -> Upload:
        """Record a pending upload, schedule its removal if it is never attached, and return a
        presigned PUT URL (a video above the multipart threshold: part URLs). An image is
        checked when a tweet attaches it; a video when its upload is completed (`complete`).
        Unattached uploads expire after `MEDIA_ORPHAN_HOURS`, so nobody can fill the storage
        with uploads nothing uses."""
        if content_type not in CONTENT_TYPES and not is_video(content_type):
            allowed = ", ".join(sorted([*CONTENT_TYPES, *VIDEO_CONTENT_TYPES]))
            raise InvalidInput(f"contentType must be one of {allowed}", field="contentType")
        video = is_video(content_type)
        max_bytes = self._media.video.max_bytes if video else self._max_bytes
        if not 1 <= byte_size <= max_bytes:
            raise InvalidInput(f"byteSize must be between 1 and {max_bytes}", field="byteSize")
        await self._throttle.charge("media_upload", owner, self._rate)
        media_id = self._ids.next_id()
        # Queued first, so that no record can outlive its expiry for want of a clean-up job.
        await self._jobs.collect_orphan_media_later(owner, media_id, self._media.expiry_seconds)
        try:
            return await self._media.start_upload(owner, media_id, content_type, byte_size)
        except UploadQuotaExceeded as exc:
            retry_after = math.ceil(exc.retry_after_seconds)
            quota = self._media.video.max_pending_bytes if video else self._max_pending_bytes
            raise TooManyAttempts(
                f"your unattached uploads already hold up to {quota} "
                f"bytes; attach or wait for them to expire (in {retry_after} s)",
                retryAfter=retry_after,
            ) from None

    async def part_url(self, viewer: int, ref: tuple[int, int], part_number: int) -> str:
        """A fresh URL for one part of the viewer's multipart upload."""
        media_id = own_media(viewer, ref)
        try:
            return await self._media.part_url(viewer, media_id, part_number)
        except (MediaNotFound, MediaInvalid) as exc:
            raise _refused(viewer, exc) from None

    async def complete(self, viewer: int, ref: tuple[int, int]) -> MediaStatus:
        """The viewer's video is uploaded: queue its processing (once; repeating it sends no
        new job while one is pending, see `MediaLibrary.complete_upload`) and return its
        state. Rate limited per user."""
        media_id = own_media(viewer, ref)
        await self._throttle.charge("media_complete", viewer, self._complete_rate)
        try:
            if await self._media.complete_upload(viewer, media_id):
                await self._jobs.process_video(viewer, media_id)
        except (MediaNotFound, MediaInvalid) as exc:
            raise _refused(viewer, exc) from None
        return await self.status(viewer, ref)

    async def status(self, viewer: int, ref: tuple[int, int]) -> MediaStatus:
        """The state of the viewer's own media item."""
        media_id = own_media(viewer, ref)
        found = await self._media.status(viewer, media_id)
        if found is None:
            raise MediaMissing(viewer, media_id, "does not exist", field="id")
        return found
