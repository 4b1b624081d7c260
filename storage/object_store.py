"""Object storage for media: S3-compatible (MinIO in production) or a local folder.

Both give clients a presigned PUT URL to upload straight to storage, and both serve published
objects at `CDN_BASE_URL/<key>`. The local folder backend is the embedded default: the app itself
accepts the signed PUT (`/uploads/<key>`) and serves `public/` under `/media/public/`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlencode

from minio import Minio
from minio.error import S3Error

from settings import Settings


@dataclass(frozen=True)
class StoredObject:
    size: int


class ObjectStore(Protocol):
    async def presigned_put(self, key: str, content_type: str, expires_seconds: int) -> str: ...

    async def stat(self, key: str) -> StoredObject | None: ...

    async def read(self, key: str, max_bytes: int) -> bytes:
        """At most `max_bytes` bytes of the object (the caller checked its size first)."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""


class S3ObjectStore:
    """The minio client is blocking, so each call runs in a thread."""

    def __init__(self, client: Minio, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    async def ensure_bucket(self) -> None:
        """Create the bucket if needed and let anyone (the CDN) read `public/`, nothing else."""
        if not await asyncio.to_thread(self._client.bucket_exists, self._bucket):
            await asyncio.to_thread(self._client.make_bucket, self._bucket)
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ["*"]},
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{self._bucket}/public/*"],
                }
            ],
        }
        await asyncio.to_thread(self._client.set_bucket_policy, self._bucket, json.dumps(policy))

    async def presigned_put(self, key: str, content_type: str, expires_seconds: int) -> str:
        return await asyncio.to_thread(
            self._client.presigned_put_object,
            self._bucket,
            key,
            expires=timedelta(seconds=expires_seconds),
        )

    async def stat(self, key: str) -> StoredObject | None:
        try:
            info = await asyncio.to_thread(self._client.stat_object, self._bucket, key)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject", "NotFound"}:
                return None
            raise
        return StoredObject(size=info.size or 0)

    async def read(self, key: str, max_bytes: int) -> bytes:
        def fetch() -> bytes:
            response = self._client.get_object(self._bucket, key, length=max_bytes)
            try:
                return response.read(max_bytes)
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(fetch)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self._client.put_object,
            self._bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
        )

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.remove_object, self._bucket, key)


class UploadRejected(Exception):
    """A PUT to the local upload endpoint with a bad, expired or foreign signature."""


class LocalObjectStore:
    """A folder. Upload URLs are HMAC-signed by this process's secret and expire."""

    def __init__(self, root: Path, *, public_api_url: str, signing_key: bytes) -> None:
        self.root = root
        self._public_api_url = public_api_url.rstrip("/")
        self._signing_key = signing_key
        (root / "public").mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise UploadRejected(f"key escapes the media folder: {key!r}")
        return path

    def _signature(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    async def presigned_put(self, key: str, content_type: str, expires_seconds: int) -> str:
        expires = int(time.time()) + expires_seconds
        query = urlencode({"expires": expires, "signature": self._signature(key, expires)})
        return f"{self._public_api_url}/uploads/{quote(key)}?{query}"

    def check_upload(self, key: str, expires: str, signature: str) -> None:
        """Raise UploadRejected unless this is a PUT URL we signed and it has not expired."""
        try:
            expires_at = int(expires)
        except ValueError:
            raise UploadRejected("bad expiry") from None
        if expires_at < time.time():
            raise UploadRejected("upload URL expired")
        # compare_digest refuses non-ASCII text (TypeError); no signature of ours has any.
        if not signature.isascii() or not hmac.compare_digest(
            self._signature(key, expires_at), signature
        ):
            raise UploadRejected("bad signature")

    async def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        return StoredObject(size=path.stat().st_size) if path.is_file() else None

    async def read(self, key: str, max_bytes: int) -> bytes:
        def fetch() -> bytes:
            with self._path(key).open("rb") as file:
                return file.read(max_bytes)

        return await asyncio.to_thread(fetch)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".partial")
        await asyncio.to_thread(partial.write_bytes, data)
        partial.replace(path)  # readers never see half a file

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def local_signing_key(jwt_secret: str) -> bytes:
    """The local backend's URL-signing key, derived so that it differs from the token key."""
    return hashlib.sha256(b"local-media-upload:" + jwt_secret.encode()).digest()


def open_object_store(settings: Settings) -> S3ObjectStore | LocalObjectStore:
    if settings.media_backend == "s3":
        client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
        return S3ObjectStore(client, settings.s3_bucket)
    return LocalObjectStore(
        Path(settings.media_local_dir).resolve(),
        public_api_url=settings.public_api_url,
        signing_key=local_signing_key(settings.jwt_secret),
    )
