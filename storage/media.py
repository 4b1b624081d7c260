"""Media records and the path from a client's raw upload to a published, metadata-free image.

Keys (this module is their only writer, apart from the tweet script that marks records attached):
  media:{A}:<id>   hash: status, content_type, declared_bytes, created_at_ms, expires_at_ms;
                   while a request verifies it: claim, claim_until_ms; once published:
                   public_key, width, height. `{A}` is the owner, so a tweet's script can attach
                   its author's media atomically.
  uploads:{A}      hash: media id -> declared bytes of the owner's unattached uploads, for the
                   quota (entries of attached, expired or purged media are dropped lazily).
Status: pending -> verifying (one request holds the claim) -> published -> attached; a failed
verification returns it to pending (the client may upload again), and the clean-up job moves
anything unattached to purging before it deletes the objects.
Objects: `incoming/<owner>/<id>` (the client's upload, never public) and
`public/<owner>/<id>.<ext>` (the clean copy, served through the CDN).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from redis.typing import EncodableT

from settings import Settings
from storage import lua
from storage.image_sandbox import ImageSandbox, SandboxLimits
from storage.images import InvalidImage
from storage.object_store import ObjectStore, open_object_store
from storage.redis_clients import DocumentsRedis, reply_bytes
from storage.tweets import MediaItem

MAX_MEDIA_PER_TWEET = 4
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


class UploadQuotaExceeded(Exception):
    """The owner already holds too many bytes of unattached uploads."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__("too many bytes of unattached uploads")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class Upload:
    media_id: int
    upload_url: str
    expires_in_seconds: int


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

    def public_url(self, key: str) -> str:
        return f"{self._cdn_base_url}/{key}"

    async def start_upload(
        self, owner_id: int, media_id: int, content_type: str, byte_size: int
    ) -> Upload:
        """Record a pending upload and sign a PUT URL for it, which expires no later than the
        upload itself. The caller validated the type (`storage.images.CONTENT_TYPES`) and the
        size (`max_bytes`). Raises UploadQuotaExceeded."""
        now_ms = int(time.time() * 1000)
        expires_ms = now_ms + int(self.expiry_seconds * 1000)
        args: list[EncodableT] = [
            media_id,
            content_type,
            byte_size,
            now_ms,
            expires_ms,
            self._max_pending_bytes,
            media_key_prefix(owner_id),
        ]
        keys = [media_key(owner_id, media_id), uploads_key(owner_id)]
        wait_ms = int(await self._start(keys=keys, args=args))
        if wait_ms >= 0:
            raise UploadQuotaExceeded(wait_ms / 1000)
        ttl = max(1, min(self._url_ttl, int(self.expiry_seconds)))
        url = await self.objects.presigned_put(
            incoming_object(owner_id, media_id), content_type, ttl
        )
        return Upload(media_id=media_id, upload_url=url, expires_in_seconds=ttl)

    async def accepts_upload(self, owner_id: int, media_id: int) -> bool:
        """Whether the upload URL of this media may still be used: its record is pending (not
        being verified, published or attached) and has not expired."""
        status, expires = await self._redis.hmget(
            media_key(owner_id, media_id), ["status", "expires_at_ms"]
        )
        return status == b"pending" and int(expires or 0) > time.time() * 1000

    async def publish(self, owner_id: int, media_ids: list[int]) -> list[MediaItem]:
        """Verify each upload and publish its clean copy; items already published are reused.
        Raises MediaNotFound or MediaInvalid. (Records are keyed by owner, so another user's
        media is simply not found here; the caller refuses foreign ids before asking.)"""
        return [await self._publish_one(owner_id, media_id) for media_id in media_ids]

    async def _publish_one(self, owner_id: int, media_id: int) -> MediaItem:
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
        """Delete the media's record and objects; with `unless_attached`, leave attached media
        alone apart from its upload object (a client may have re-sent one through a URL that
        was still valid). True if it purged. Idempotent: a retry finishes an interrupted run."""
        keys = [media_key(owner_id, media_id), uploads_key(owner_id)]
        public_key = await self._condemn(
            keys=keys, args=[media_id, "1" if unless_attached else "0"]
        )
        await self.objects.delete(incoming_object(owner_id, media_id))
        if public_key is None:
            return False
        if public_key:
            await self.objects.delete(public_key.decode())
        await self._redis.delete(keys[0])
        return True


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
    )
