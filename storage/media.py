"""Media records and the path from a client's raw upload to a published, metadata-free image.

Keys (this module is their only writer, apart from the tweet script that marks records attached):
  media:{A}:<id>   hash: status (pending → published → attached), content_type, declared_bytes,
                   created_at_ms, and once published: public_key, width, height. `{A}` is the
                   owner, so a tweet's script can attach its author's media atomically.
Objects: `incoming/<owner>/<id>` (the client's upload, never public) and
`public/<owner>/<id>.<ext>` (the clean copy, served through the CDN).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from settings import Settings
from storage.images import InvalidImage, clean_copy
from storage.object_store import ObjectStore, open_object_store
from storage.redis_clients import DocumentsRedis
from storage.tweets import MediaItem

MAX_MEDIA_PER_TWEET = 4


class MediaError(Exception):
    """Base of the reasons a media item cannot be used."""


class MediaNotFound(MediaError):
    pass


class MediaInvalid(MediaError):
    pass


@dataclass(frozen=True)
class Upload:
    media_id: int
    upload_url: str
    expires_in_seconds: int


def media_key(owner_id: int, media_id: int) -> str:
    return f"media:{{{owner_id}}}:{media_id}"


def incoming_object(owner_id: int, media_id: int) -> str:
    return f"incoming/{owner_id}/{media_id}"


class MediaLibrary:
    def __init__(
        self,
        client: DocumentsRedis,
        objects: ObjectStore,
        *,
        cdn_base_url: str,
        max_bytes: int,
        max_pixels: int,
        upload_url_ttl_seconds: int,
    ) -> None:
        self._redis = client
        self.objects = objects
        self._cdn_base_url = cdn_base_url.rstrip("/")
        self.max_bytes = max_bytes
        self._max_pixels = max_pixels
        self._url_ttl = upload_url_ttl_seconds

    def public_url(self, key: str) -> str:
        return f"{self._cdn_base_url}/{key}"

    async def start_upload(
        self, owner_id: int, media_id: int, content_type: str, byte_size: int
    ) -> Upload:
        """Record a pending upload and sign a PUT URL for it. The caller validated the type
        (`storage.images.CONTENT_TYPES`) and the size (`max_bytes`)."""
        await self._redis.hset(
            media_key(owner_id, media_id),
            mapping={
                "status": "pending",
                "content_type": content_type,
                "declared_bytes": byte_size,
                "created_at_ms": int(time.time() * 1000),
            },
        )
        url = await self.objects.presigned_put(
            incoming_object(owner_id, media_id), content_type, self._url_ttl
        )
        return Upload(media_id=media_id, upload_url=url, expires_in_seconds=self._url_ttl)

    async def publish(self, owner_id: int, media_ids: list[int]) -> list[MediaItem]:
        """Verify each upload and publish its clean copy; items already published are reused.
        Raises MediaNotFound or MediaInvalid. (Records are keyed by owner, so another user's
        media is simply not found here; the caller refuses foreign ids before asking.)"""
        return [await self._publish_one(owner_id, media_id) for media_id in media_ids]

    async def _publish_one(self, owner_id: int, media_id: int) -> MediaItem:
        record = await self._record(owner_id, media_id)
        status = record.get("status")
        if status == "attached":
            raise MediaInvalid(f"media {media_id} is already attached to a tweet")
        if status != "published":
            record = await self._verify_and_publish(owner_id, media_id, record)
        return MediaItem(
            media_id=media_id,
            url=self.public_url(record["public_key"]),
            width=int(record["width"]),
            height=int(record["height"]),
            content_type=record["content_type"],
        )

    async def _record(self, owner_id: int, media_id: int) -> dict[str, str]:
        raw = await self._redis.hgetall(media_key(owner_id, media_id))
        if not raw:
            raise MediaNotFound(f"no media {media_id}")
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def _verify_and_publish(
        self, owner_id: int, media_id: int, record: dict[str, str]
    ) -> dict[str, str]:
        incoming = incoming_object(owner_id, media_id)
        stored = await self.objects.stat(incoming)
        if stored is None:
            raise MediaInvalid(f"media {media_id} has not been uploaded")
        declared = int(record["declared_bytes"])
        if stored.size > declared or stored.size > self.max_bytes:
            raise MediaInvalid(f"media {media_id} is larger than declared ({declared} bytes)")
        data = await self.objects.read(incoming, stored.size)
        try:
            image = await asyncio.to_thread(
                clean_copy, data, record["content_type"], self._max_pixels
            )
        except InvalidImage as exc:
            raise MediaInvalid(f"media {media_id}: {exc}") from None
        public_key = f"public/{owner_id}/{media_id}.{image.extension}"
        await self.objects.put(public_key, image.data, image.content_type)
        published = {
            "status": "published",
            "public_key": public_key,
            "width": str(image.width),
            "height": str(image.height),
        }
        await self._redis.hset(media_key(owner_id, media_id), mapping=published)
        await self.objects.delete(incoming)
        return {**record, **published}

    async def purge(self, owner_id: int, media_id: int, *, unless_attached: bool) -> bool:
        """Delete the media's objects and record; with `unless_attached`, leave attached media
        alone. True if it purged. Idempotent."""
        key = media_key(owner_id, media_id)
        raw = await self._redis.hgetall(key)
        record = {k.decode(): v.decode() for k, v in raw.items()}
        if unless_attached and record.get("status") == "attached":
            return False
        await self.objects.delete(incoming_object(owner_id, media_id))
        if "public_key" in record:
            await self.objects.delete(record["public_key"])
        await self._redis.delete(key)
        return True


def open_media_library(settings: Settings, documents: DocumentsRedis) -> MediaLibrary:
    return MediaLibrary(
        documents,
        open_object_store(settings),
        cdn_base_url=settings.cdn_base_url,
        max_bytes=settings.media_max_bytes,
        max_pixels=settings.media_max_pixels,
        upload_url_ttl_seconds=settings.media_upload_url_ttl_seconds,
    )
