"""Media records and the path from a client's raw upload to a published, metadata-free image
or video.

Keys (this module is their only writer, apart from the tweet script that marks records attached):
  media:{A}:<id>   hash: status, content_type, declared_bytes, created_at_ms, expires_at_ms;
                   while a request verifies it: claim, claim_until_ms; once published:
                   public_key, width, height. `{A}` is the owner, so a tweet's script can attach
                   its author's media atomically.
  uploads:{A}      hash: media id -> declared bytes of the owner's unattached uploads, for the
                   quota (entries of attached, expired or purged media are dropped lazily).
  video_uploads:{A}  the same for videos, under their own quota.
Image status: pending -> verifying (one request holds the claim) -> published -> attached; a
failed verification returns it to pending (the client may upload again), and the clean-up job
moves anything unattached to purging before it deletes the objects.
Video records also hold kind=video, attempts, sent_at_ms (when a processing job was last sent),
and once processed poster_key, duration_ms; or a reason once failed; a multipart upload adds
upload_id, part_size, part_count. Video status:
pending (uploading) -> queued (the client completed the upload; a job is queued) -> processing
(a worker holds a lease, `claim`/`claim_until_ms`, which it renews while the sandbox runs) ->
published (READY) | failed (with `reason`: final, the objects are gone) -> attached. A worker
that dies stops renewing: once its lease ran out the redelivered job takes it again, counting
attempts; past VIDEO_PROCESS_MAX_ATTEMPTS it is failed, never left processing.
Objects: `incoming/<owner>/<id>` (the client's upload, never public; `<id>.parts/<n>` on the
local backend while a multipart upload is open) and `public/<owner>/<id>.<ext>` (the clean copy,
served through the CDN), plus `public/<owner>/<id>.jpg` (a video's poster).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from redis.typing import EncodableT

from settings import Settings
from storage import lua, videos
from storage.image_sandbox import ImageSandbox, SandboxLimits
from storage.images import InvalidImage
from storage.object_store import MissingObject, ObjectStore, open_object_store
from storage.redis_clients import DocumentsRedis, reply_bytes
from storage.sandbox import ChildLimits, Sandbox, SandboxRefused
from storage.tweets import MediaItem

log = logging.getLogger(__name__)

MAX_MEDIA_PER_TWEET = 4
MAX_VIDEOS_PER_TWEET = 1  # and then nothing else: Twitter's rule
MAX_UPLOAD_PARTS = 10_000  # S3's limit on the parts of one multipart upload
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part (but the last)
# What a video's processing may write: its clean copy and poster are at most this many times
# the upload, plus a margin (a transcode of a tiny, very compressed file grows).
OUTPUT_GROWTH = 4
OUTPUT_MARGIN_BYTES = 64 * 1024 * 1024
# Each processing run works in a folder of its own, `<pid>-<random>`, under this one in the
# system's temporary folder; a worker killed mid-run leaves its folder behind, and the next
# worker process to start processing removes the folders of processes no longer alive.
VIDEO_WORK_DIR = Path(tempfile.gettempdir()) / "video-work"
# A claim outlives the verification it covers (the sandbox's timeout) by this much, so a request
# that died mid-verification blocks its media only briefly.
CLAIM_MARGIN_SECONDS = 60


class MediaError(Exception):
    """Base of the reasons a media item cannot be used. `reason` completes "media <id> ..."."""

    def __init__(self, media_id: int, reason: str) -> None:
        super().__init__(f"media {media_id} {reason}")
        self.media_id = media_id
        self.reason = reason


class MediaNotFound(MediaError):
    pass


class MediaInvalid(MediaError):
    pass


class MediaNotReady(MediaError):
    """A video whose upload was not completed yet, or that is still being processed."""


class VideoBusy(Exception):
    """Another worker holds a live processing lease on this video: try again after it."""


class MediaState(StrEnum):
    """A media item's processing state as clients see it (Twitter's `processing_info`)."""

    PENDING = "PENDING"  # uploading, or completed and queued
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"


_STATES = {
    "pending": MediaState.PENDING,
    "queued": MediaState.PENDING,
    "verifying": MediaState.PROCESSING,
    "processing": MediaState.PROCESSING,
    "published": MediaState.READY,
    "attached": MediaState.READY,
    "failed": MediaState.FAILED,
}


@dataclass(frozen=True)
class MediaStatus:
    media_id: int
    kind: str  # "image" or "video"
    state: MediaState
    reason: str | None  # why it FAILED
    item: MediaItem | None  # once READY
    attempts: int


@dataclass(frozen=True)
class VideoLimits:
    """What a video may be, and what its processing may take (VIDEO_* settings)."""

    max_bytes: int
    max_seconds: float
    max_width: int  # the longer side
    max_height: int  # the shorter side
    max_fps: float
    max_pending_bytes: int
    multipart_threshold_bytes: int  # larger uploads go in parts
    part_bytes: int
    process: ChildLimits
    max_attempts: int
    lease_seconds: float


def is_video(content_type: str) -> bool:
    return content_type in videos.CONTENT_TYPES


def part_plan(byte_size: int, part_bytes: int) -> tuple[int, int]:
    """(part size, part count) for a multipart upload of `byte_size` bytes: parts of
    `part_bytes`, larger if S3's 10,000 parts would not hold the file."""
    size = max(part_bytes, MIN_PART_BYTES, math.ceil(byte_size / MAX_UPLOAD_PARTS))
    return size, math.ceil(byte_size / size)


class UploadQuotaExceeded(Exception):
    """The owner already holds too many bytes of unattached uploads."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__("too many bytes of unattached uploads")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class Upload:
    media_id: int
    upload_url: str  # with parts: part 1's URL
    expires_in_seconds: int
    part_size: int | None = None  # a multipart upload: bytes per part (the last may be short)
    part_count: int | None = None


@dataclass(frozen=True)
class PublishedCopy:
    key: str
    width: int
    height: int


def media_key_prefix(owner_id: int) -> str:
    return f"media:{{{owner_id}}}:"


def media_key(owner_id: int, media_id: int) -> str:
    return f"{media_key_prefix(owner_id)}{media_id}"


def uploads_key(owner_id: int) -> str:
    return f"uploads:{{{owner_id}}}"


def video_uploads_key(owner_id: int) -> str:
    return f"video_uploads:{{{owner_id}}}"


def incoming_object(owner_id: int, media_id: int) -> str:
    return f"incoming/{owner_id}/{media_id}"


class MediaLibrary:
    def __init__(
        self,
        client: DocumentsRedis,
        objects: ObjectStore,
        sandbox: ImageSandbox,
        *,
        cdn_base_url: str,
        max_bytes: int,
        upload_url_ttl_seconds: int,
        expiry_seconds: float,
        max_pending_bytes: int,
        video: VideoLimits,
    ) -> None:
        self._redis = client
        self.objects = objects
        self._sandbox = sandbox
        self._cdn_base_url = cdn_base_url.rstrip("/")
        self.max_bytes = max_bytes
        self._url_ttl = upload_url_ttl_seconds
        self.expiry_seconds = expiry_seconds
        self._max_pending_bytes = max_pending_bytes
        self._claim_ms = int((sandbox.limits.timeout_seconds + CLAIM_MARGIN_SECONDS) * 1000)
        self._start = lua.register(client, "media_start")
        self._claim = lua.register(client, "media_claim")
        self._settle = lua.register(client, "media_settle")
        self._condemn = lua.register(client, "media_condemn")
        self._complete = lua.register(client, "media_complete")
        self._lease = lua.register(client, "media_lease")
        self._renew = lua.register(client, "media_renew")
        self.video = video
        self._video_sandbox = Sandbox(video.process)
        self._swept = False

    def public_url(self, key: str) -> str:
        return f"{self._cdn_base_url}/{key}"

    async def start_upload(
        self, owner_id: int, media_id: int, content_type: str, byte_size: int
    ) -> Upload:
        """Record a pending upload and sign a PUT URL for it, which expires no later than the
        upload itself; a video above the multipart threshold gets a multipart upload instead
        (part 1's URL here, the others from `part_url`). The caller validated the type
        (`storage.images.CONTENT_TYPES` or `storage.videos.CONTENT_TYPES`) and the size.
        Raises UploadQuotaExceeded."""
        now_ms = int(time.time() * 1000)
        expires_ms = now_ms + int(self.expiry_seconds * 1000)
        video = is_video(content_type)
        quota = self.video.max_pending_bytes if video else self._max_pending_bytes
        index = video_uploads_key(owner_id) if video else uploads_key(owner_id)
        incoming = incoming_object(owner_id, media_id)
        extra: list[EncodableT] = ["kind", "video"] if video else []
        parts: tuple[int, int] | None = None
        if video and byte_size > self.video.multipart_threshold_bytes:
            parts = part_plan(byte_size, self.video.part_bytes)
            upload_id = await self.objects.start_multipart(incoming, content_type)
            extra += ["upload_id", upload_id, "part_size", parts[0], "part_count", parts[1]]
        args: list[EncodableT] = [
            media_id,
            content_type,
            byte_size,
            now_ms,
            expires_ms,
            quota,
            media_key_prefix(owner_id),
            *extra,
        ]
        keys = [media_key(owner_id, media_id), index]
        wait_ms = int(await self._start(keys=keys, args=args))
        if wait_ms >= 0:
            if parts is not None:
                await self.objects.abort_multipart(incoming, str(extra[3]))
            raise UploadQuotaExceeded(wait_ms / 1000)
        ttl = self._url_ttl_seconds()
        if parts is not None:
            url = await self.objects.presigned_part(incoming, str(extra[3]), 1, ttl)
            return Upload(media_id, url, ttl, part_size=parts[0], part_count=parts[1])
        url = await self.objects.presigned_put(incoming, content_type, ttl)
        return Upload(media_id=media_id, upload_url=url, expires_in_seconds=ttl)

    def _url_ttl_seconds(self) -> int:
        return max(1, min(self._url_ttl, int(self.expiry_seconds)))

    async def part_url(self, owner_id: int, media_id: int, part_number: int) -> str:
        """A fresh presigned PUT URL for one part of a multipart upload (to send a part the
        first time, or again after a dropped connection). Raises MediaNotFound or
        MediaInvalid."""
        record = await self._record(owner_id, media_id)
        if not record or record.get("status") == "purging":
            raise MediaNotFound(media_id, "does not exist")
        if "upload_id" not in record:
            raise MediaInvalid(media_id, "is not a multipart upload: PUT it to its uploadUrl")
        if record["status"] != "pending" or int(record["expires_at_ms"]) <= time.time() * 1000:
            raise MediaInvalid(media_id, "no longer accepts parts (completed or expired)")
        if not 1 <= part_number <= int(record["part_count"]):
            raise MediaInvalid(media_id, f"has parts 1-{record['part_count']}")
        incoming = incoming_object(owner_id, media_id)
        ttl = self._url_ttl_seconds()
        return await self.objects.presigned_part(incoming, record["upload_id"], part_number, ttl)

    async def upload_limit(
        self, owner_id: int, media_id: int, part_number: int | None = None
    ) -> int:
        """How many bytes an upload URL of this media may receive: 0 unless its record is
        pending (not being verified or processed, published or attached) and has not expired;
        else the declared size (`byteSize`), or for a part of a multipart upload, that part's
        share of it (the part size; the last part, what is left). Called when the body starts
        and again once it is complete, before it is kept (a slow upload may outlive its
        media's pending state)."""
        status, expires, declared, part_size, part_count = await self._redis.hmget(
            media_key(owner_id, media_id),
            ["status", "expires_at_ms", "declared_bytes", "part_size", "part_count"],
        )
        if status != b"pending" or int(expires or 0) <= time.time() * 1000:
            return 0
        if part_number is None or not part_size:
            return int(declared or 0) if part_number is None else 0
        size, count = int(part_size), int(part_count or 0)
        if not 1 <= part_number <= count:
            return 0
        return size if part_number < count else int(declared or 0) - size * (count - 1)

    async def declared_type(self, owner_id: int, media_id: int) -> str | None:
        """The content type declared to createMediaUpload; None without a record."""
        raw = await self._redis.hget(media_key(owner_id, media_id), "content_type")
        return None if raw is None else reply_bytes(raw).decode()

    async def kinds(self, owner_id: int, media_ids: list[int]) -> list[str | None]:
        """Each media item's kind ("image" or "video"), None for no such record."""
        found = []
        for media_id in media_ids:
            status, kind = await self._redis.hmget(
                media_key(owner_id, media_id), ["status", "kind"]
            )
            found.append(None if status is None else reply_bytes(kind or b"image").decode())
        return found

    async def publish(self, owner_id: int, media_ids: list[int]) -> list[MediaItem]:
        """Verify each upload and publish its clean copy; items already published are reused.
        Raises MediaNotFound or MediaInvalid. (Records are keyed by owner, so another user's
        media is simply not found here; the caller refuses foreign ids before asking.)"""
        return [await self._publish_one(owner_id, media_id) for media_id in media_ids]

    async def _publish_one(self, owner_id: int, media_id: int) -> MediaItem:
        if (await self.kinds(owner_id, [media_id]))[0] == "video":
            return await self._ready_video(owner_id, media_id)
        key = media_key(owner_id, media_id)
        token = secrets.token_hex(8)
        now_ms = int(time.time() * 1000)
        claim_args: list[EncodableT] = [now_ms, token, now_ms + self._claim_ms]
        verdict = (await self._claim(keys=[key], args=claim_args)).decode()
        if verdict == "missing":
            raise MediaNotFound(media_id, "does not exist")
        if verdict == "attached":
            raise MediaInvalid(media_id, "is already attached to a tweet")
        if verdict == "busy":
            raise MediaInvalid(media_id, "is already being attached to another tweet")
        if verdict == "expired":
            raise MediaInvalid(media_id, "has expired: upload it again")
        if verdict == "claimed":
            await self._verify_and_publish(owner_id, media_id, token)
        record = await self._record(owner_id, media_id)
        if record.get("status") not in ("published", "attached") or "public_key" not in record:
            raise MediaInvalid(media_id, "is already attached to a tweet")
        return MediaItem(
            media_id=media_id,
            url=self.public_url(record["public_key"]),
            width=int(record["width"]),
            height=int(record["height"]),
            content_type=record["content_type"],
        )

    async def _ready_video(self, owner_id: int, media_id: int) -> MediaItem:
        """A processed video's item; why not otherwise (not ready is MediaNotReady)."""
        status = await self.status(owner_id, media_id)
        if status is None:
            raise MediaNotFound(media_id, "does not exist")
        if status.state is MediaState.FAILED:
            raise MediaInvalid(media_id, f"could not be processed: {status.reason}")
        if status.state is not MediaState.READY or status.item is None:
            hint = "complete its upload first" if status.state is MediaState.PENDING else "wait"
            raise MediaNotReady(media_id, f"is not ready (state {status.state.value}): {hint}")
        return status.item

    async def status(self, owner_id: int, media_id: int) -> MediaStatus | None:
        """The media's state as clients see it; None without a record."""
        record = await self._record(owner_id, media_id)
        state = _STATES.get(record.get("status", ""))
        if state is None:
            return None
        item = None
        if state is MediaState.READY and "public_key" in record:
            poster = record.get("poster_key")
            item = MediaItem(
                media_id=media_id,
                url=self.public_url(record["public_key"]),
                width=int(record["width"]),
                height=int(record["height"]),
                content_type=videos.OUTPUT_TYPE if poster else record["content_type"],
                poster_url=self.public_url(poster) if poster else None,
                duration_ms=int(record["duration_ms"]) if poster else None,
            )
        return MediaStatus(
            media_id=media_id,
            kind=record.get("kind", "image"),
            state=state,
            reason=record.get("reason"),
            item=item,
            attempts=int(record.get("attempts", 0)),
        )

    async def complete_upload(self, owner_id: int, media_id: int) -> bool:
        """The client finished uploading a video: join its parts (multipart) and queue it.
        True if the caller must send the processing job: this call queued it, or it has waited
        queued (or under a lapsed lease) for a lease period since the last job was sent (a lost
        message is recovered; repeated completions do not flood the queue); False otherwise.
        Concurrent completions are safe: the parts are joined once. Raises MediaNotFound or
        MediaInvalid."""
        record = await self._record(owner_id, media_id)
        if record.get("status") == "pending" and "upload_id" in record:
            incoming = incoming_object(owner_id, media_id)
            try:
                missing = await self.objects.complete_multipart(
                    incoming, record["upload_id"], int(record["part_count"])
                )
            except MissingObject:
                missing = []  # completed before: the object is there or its stat says not
            if missing:
                shown = ", ".join(map(str, missing[:20])) + (", ..." if len(missing) > 20 else "")
                raise MediaInvalid(media_id, f"lacks parts {shown}: upload them, then complete")
        if record.get("status") == "pending":
            stored = await self.objects.stat(incoming_object(owner_id, media_id))
            if stored is None:
                raise MediaInvalid(media_id, "has not been uploaded")
        resend_ms = int(self.video.lease_seconds * 1000)
        verdict = await self._complete(
            keys=[media_key(owner_id, media_id)], args=[_now_ms(), resend_ms]
        )
        verdict = verdict.decode()
        if verdict == "missing":
            raise MediaNotFound(media_id, "does not exist")
        if verdict == "not_video":
            raise MediaInvalid(media_id, "is an image: images need no completion")
        if verdict == "expired":
            raise MediaInvalid(media_id, "has expired: upload it again")
        return verdict in ("send", "resend")

    async def process_video(self, owner_id: int, media_id: int) -> MediaState | None:
        """The worker's job: take the lease, check and clean the upload in the sandbox, publish
        the clean copy and its poster, or fail it with a reason and delete every object.
        Idempotent; raises VideoBusy while another worker's lease is live (retry later).
        Returns the state it left, None if there was nothing to do."""
        key = media_key(owner_id, media_id)
        token = secrets.token_hex(8)
        lease_ms = int(self.video.lease_seconds * 1000)
        args: list[EncodableT] = [
            _now_ms(),
            token,
            _now_ms() + lease_ms,
            self.video.max_attempts,
            f"processing stopped {self.video.max_attempts} times without finishing",
        ]
        verdict = (await self._lease(keys=[key], args=args)).decode()
        if verdict == "busy":
            raise VideoBusy(f"media {media_id} is held by another worker")
        if verdict == "exhausted":
            await self._delete_objects(owner_id, media_id)
            return MediaState.FAILED
        if verdict != "claimed":
            return None
        renewer = asyncio.create_task(self._keep_lease(key, token, lease_ms))
        try:
            outcome = await self._process_claimed(owner_id, media_id)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        if isinstance(outcome, str):
            if await self._settle(keys=[key], args=[token, "status", "failed", "reason", outcome]):
                await self._delete_objects(owner_id, media_id)
                return MediaState.FAILED
            return None
        fields: list[EncodableT] = ["status", "published"]
        for name, value in outcome.items():
            fields += [name, value]
        if not await self._settle(keys=[key], args=[token, *fields]):
            await self._delete_objects(owner_id, media_id, published_too=True)  # purged meanwhile
            return None
        await self.objects.delete(incoming_object(owner_id, media_id))
        return MediaState.READY

    async def _keep_lease(self, key: str, token: str, lease_ms: int) -> None:
        while True:
            await asyncio.sleep(lease_ms / 3000)
            if not await self._renew(keys=[key], args=[token, _now_ms() + lease_ms]):
                return

    async def _process_claimed(self, owner_id: int, media_id: int) -> dict[str, EncodableT] | str:
        """Holding the lease: the published record's fields, or the reason for refusing."""
        record = await self._record(owner_id, media_id)
        incoming = incoming_object(owner_id, media_id)
        stored = await self.objects.stat(incoming)
        if stored is None:
            return "it has not been uploaded"
        declared = int(record["declared_bytes"])
        if stored.size > declared or stored.size > self.video.max_bytes:
            return f"it is larger than declared ({declared} bytes)"
        if not self._swept:
            self._swept = True
            await asyncio.to_thread(sweep_stale_work, VIDEO_WORK_DIR)
        VIDEO_WORK_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{os.getpid()}-", dir=VIDEO_WORK_DIR) as folder:
            source, out = Path(folder) / "upload", Path(folder) / "out"
            out.mkdir()
            await self.objects.download(incoming, source)
            args = video_child_args(source, out, self.video, stored.size)
            try:
                result, _ = await self._video_sandbox.run(videos.__file__, args)
            except SandboxRefused as exc:
                return f"the video {exc}"
            log.info("video %s/%s processed: %s", owner_id, media_id, result)
            public_key = f"public/{owner_id}/{media_id}.mp4"
            poster_key = f"public/{owner_id}/{media_id}.jpg"
            await self.objects.upload(public_key, out / videos.VIDEO_FILE, videos.OUTPUT_TYPE)
            await self.objects.upload(poster_key, out / videos.POSTER_FILE, "image/jpeg")
        return {
            "public_key": public_key,
            "poster_key": poster_key,
            "width": result["width"],
            "height": result["height"],
            "duration_ms": result["duration_ms"],
        }

    async def _delete_objects(
        self, owner_id: int, media_id: int, *, published_too: bool = False
    ) -> None:
        """Delete a video's upload (and parts); with `published_too`, its clean copy and
        poster (a refusal never wrote those)."""
        record = await self._record(owner_id, media_id)
        incoming = incoming_object(owner_id, media_id)
        if "upload_id" in record:
            await self.objects.abort_multipart(incoming, record["upload_id"])
        await self.objects.delete(incoming)
        if published_too:
            for name in ("mp4", "jpg"):
                await self.objects.delete(f"public/{owner_id}/{media_id}.{name}")

    async def _record(self, owner_id: int, media_id: int) -> dict[str, str]:
        raw = await self._redis.hgetall(media_key(owner_id, media_id))
        return {reply_bytes(k).decode(): reply_bytes(v).decode() for k, v in raw.items()}

    async def _verify_and_publish(self, owner_id: int, media_id: int, token: str) -> None:
        """Holding the claim: verify the upload in the sandbox and publish its clean copy. Any
        refusal gives the claim back (pending again: the client may upload anew)."""
        key = media_key(owner_id, media_id)
        try:
            record = await self._record(owner_id, media_id)
            clean = await self._clean_and_store(owner_id, media_id, record)
        except BaseException:
            await self._settle(keys=[key], args=[token, "status", "pending"])
            raise
        published: list[EncodableT] = ["status", "published", "public_key", clean.key]
        published += ["width", clean.width, "height", clean.height]
        if not await self._settle(keys=[key], args=[token, *published]):
            await self.objects.delete(clean.key)  # purged meanwhile
            raise MediaInvalid(media_id, "has expired: upload it again")
        await self.objects.delete(incoming_object(owner_id, media_id))

    async def _clean_and_store(
        self, owner_id: int, media_id: int, record: dict[str, str]
    ) -> PublishedCopy:
        incoming = incoming_object(owner_id, media_id)
        stored = await self.objects.stat(incoming)
        if stored is None:
            raise MediaInvalid(media_id, "has not been uploaded")
        declared = int(record["declared_bytes"])
        if stored.size > declared or stored.size > self.max_bytes:
            raise MediaInvalid(media_id, f"is larger than declared ({declared} bytes)")
        data = await self.objects.read(incoming, stored.size)
        try:
            image = await self._sandbox.clean_copy(data, record["content_type"])
        except InvalidImage as exc:
            raise MediaInvalid(media_id, f"is not a usable image: {exc}") from None
        public_key = f"public/{owner_id}/{media_id}.{image.extension}"
        await self.objects.put(public_key, image.data, image.content_type)
        return PublishedCopy(public_key, image.width, image.height)

    async def purge(self, owner_id: int, media_id: int, *, unless_attached: bool) -> bool:
        """Delete the media's record and objects (a video's poster and any multipart parts
        too); with `unless_attached`, leave attached media alone apart from its upload object
        (a client may have re-sent one through a URL that was still valid). True if it
        purged. Idempotent: a retry finishes an interrupted run."""
        keys = [
            media_key(owner_id, media_id),
            uploads_key(owner_id),
            video_uploads_key(owner_id),
        ]
        found = await self._condemn(keys=keys, args=[media_id, "1" if unless_attached else "0"])
        incoming = incoming_object(owner_id, media_id)
        await self.objects.delete(incoming)
        if found is None:
            return False
        public_key, poster_key, upload_id = (reply_bytes(part).decode() for part in found)
        if upload_id:
            await self.objects.abort_multipart(incoming, upload_id)
        for object_key in (public_key, poster_key):
            if object_key:
                await self.objects.delete(object_key)
        await self._redis.delete(keys[0])
        return True


def video_child_args(source: Path, out: Path, limits: VideoLimits, size: int) -> list[str]:
    """The arguments of `storage/videos.py` (after the sandbox's own) for an upload of `size`
    bytes at `source`, writing into `out`."""
    growth = size * OUTPUT_GROWTH + OUTPUT_MARGIN_BYTES
    bounds = (limits.max_width, limits.max_height, limits.max_seconds, limits.max_fps, growth)
    return [str(source), str(out), *map(str, bounds)]


def sweep_stale_work(root: Path) -> list[str]:
    """Remove the work folders (`<pid>-...`) under `root` whose process is gone; their
    names."""
    removed = []
    for folder in root.glob("*-*") if root.is_dir() else []:
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _now_ms() -> int:
    return int(time.time() * 1000)


def open_media_library(settings: Settings, documents: DocumentsRedis) -> MediaLibrary:
    sandbox = ImageSandbox(
        SandboxLimits(
            max_pixels=settings.media_max_pixels,
            max_frames=settings.media_max_frames,
            memory_bytes=settings.media_verify_memory_mb * 1024 * 1024,
            cpu_seconds=settings.media_verify_cpu_seconds,
            timeout_seconds=settings.media_verify_timeout_seconds,
            concurrency=settings.media_verify_concurrency,
        )
    )
    return MediaLibrary(
        documents,
        open_object_store(settings),
        sandbox,
        cdn_base_url=settings.cdn_base_url,
        max_bytes=settings.media_max_bytes,
        upload_url_ttl_seconds=settings.media_upload_url_ttl_seconds,
        expiry_seconds=settings.media_orphan_hours * 3600,
        max_pending_bytes=settings.media_max_pending_bytes,
        video=video_limits(settings),
    )


def video_limits(settings: Settings) -> VideoLimits:
    return VideoLimits(
        max_bytes=settings.video_max_bytes,
        max_seconds=settings.video_max_seconds,
        max_width=settings.video_max_width,
        max_height=settings.video_max_height,
        max_fps=settings.video_max_fps,
        max_pending_bytes=settings.video_max_pending_bytes,
        multipart_threshold_bytes=settings.video_multipart_threshold_bytes,
        part_bytes=settings.video_multipart_part_bytes,
        process=ChildLimits(
            memory_bytes=settings.video_process_memory_mb * 1024 * 1024,
            cpu_seconds=settings.video_process_cpu_seconds,
            timeout_seconds=settings.video_process_timeout_seconds,
            concurrency=settings.video_process_concurrency,
        ),
        max_attempts=settings.video_process_max_attempts,
        lease_seconds=settings.video_lease_seconds,
    )
