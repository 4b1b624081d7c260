"""Object storage for media: S3-compatible (MinIO in production) or a local folder.

Both give clients a presigned PUT URL to upload straight to storage, and both serve published
objects at `CDN_BASE_URL/<key>` (Range requests included, for seeking in videos). The local
folder backend is the embedded default: the app itself accepts the signed PUT (`/uploads/<key>`)
and serves `public/` under `/media/public/`.

Large uploads go in parts (S3 multipart upload: one presigned PUT URL per part, then a
completion), so a dropped connection costs one part, not the file. The local backend mimics
it: parts are files beside the upload, concatenated on completion.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import quote, urlencode

from minio import Minio
from minio.datatypes import Part
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

    async def download(self, key: str, path: Path) -> None:
        """Copy the object into a local file (streamed: videos do not fit in memory)."""

    async def upload(self, key: str, path: Path, content_type: str) -> None:
        """Store a local file as the object (streamed)."""

    async def start_multipart(self, key: str, content_type: str) -> str:
        """Begin a multipart upload of `key`; its upload id."""

    async def presigned_part(
        self, key: str, upload_id: str, part_number: int, expires_seconds: int
    ) -> str: ...

    async def complete_multipart(self, key: str, upload_id: str, part_count: int) -> list[int]:
        """Join parts 1..part_count into the object. Returns the missing part numbers (then
        nothing is joined: the client may still send them), [] once joined."""

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the parts of an unfinished multipart upload; a finished or unknown one is not
        an error."""


class MissingObject(Exception):
    """The object asked for does not exist."""


_MISSING_CODES = {"NoSuchKey", "NoSuchObject", "NotFound", "NoSuchUpload"}


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
            if exc.code in _MISSING_CODES:
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

    async def download(self, key: str, path: Path) -> None:
        await asyncio.to_thread(self._client.fget_object, self._bucket, key, str(path))

    async def upload(self, key: str, path: Path, content_type: str) -> None:
        await asyncio.to_thread(
            self._client.fput_object, self._bucket, key, str(path), content_type=content_type
        )

    # minio's client has no public multipart API (it uploads in parts itself); these are the
    # S3 calls it makes, by its own names.
    async def start_multipart(self, key: str, content_type: str) -> str:
        headers: dict[str, str | list[str] | tuple[str]] = {"Content-Type": content_type}
        return await asyncio.to_thread(
            self._client._create_multipart_upload, self._bucket, key, headers
        )

    async def presigned_part(
        self, key: str, upload_id: str, part_number: int, expires_seconds: int
    ) -> str:
        return await asyncio.to_thread(
            self._client.get_presigned_url,
            "PUT",
            self._bucket,
            key,
            expires=timedelta(seconds=expires_seconds),
            extra_query_params={"uploadId": upload_id, "partNumber": str(part_number)},
        )

    async def complete_multipart(self, key: str, upload_id: str, part_count: int) -> list[int]:
        def complete() -> list[int]:
            listed = self._client._list_parts(self._bucket, key, upload_id, max_parts=10_000)
            by_number = {part.part_number: part for part in listed.parts}
            missing = [n for n in range(1, part_count + 1) if n not in by_number]
            if missing:
                return missing
            parts = [Part(n, by_number[n].etag) for n in range(1, part_count + 1)]
            self._client._complete_multipart_upload(self._bucket, key, upload_id, parts)
            return []

        try:
            return await asyncio.to_thread(complete)
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise MissingObject(key) from None
            raise

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            await asyncio.to_thread(
                self._client._abort_multipart_upload, self._bucket, key, upload_id
            )
        except S3Error as exc:
            if exc.code not in _MISSING_CODES:
                raise


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

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        max_bytes: int,
        still_wanted: Callable[[], Awaitable[bool]] | None = None,
    ) -> Literal["stored", "too_large", "unwanted"]:
        """Store what `chunks` yields as the object, unless it exceeds `max_bytes` ("too_large")
        or `still_wanted`, asked once the body is complete, says no ("unwanted"); then nothing
        is stored. Written to the side first: readers never see half a file, and a body that
        took long never lands after its media moved on (attached, expired, purged)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
        written = 0
        try:
            with partial.open("wb") as file:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > max_bytes:
                        return "too_large"
                    await asyncio.to_thread(file.write, chunk)
            if still_wanted is not None and not await still_wanted():
                return "unwanted"
            partial.replace(path)
            return "stored"
        finally:
            partial.unlink(missing_ok=True)

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def download(self, key: str, path: Path) -> None:
        if not self._path(key).is_file():
            raise MissingObject(key)
        await asyncio.to_thread(shutil.copyfile, self._path(key), path)

    async def upload(self, key: str, path: Path, content_type: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".partial")
        await asyncio.to_thread(shutil.copyfile, path, partial)
        partial.replace(target)

    def _parts_dir(self, key: str) -> Path:
        return self._path(f"{key}.parts")

    async def start_multipart(self, key: str, content_type: str) -> str:
        self._parts_dir(key).mkdir(parents=True, exist_ok=True)
        return "local"

    async def presigned_part(
        self, key: str, upload_id: str, part_number: int, expires_seconds: int
    ) -> str:
        return await self.presigned_put(f"{key}.parts/{part_number}", "", expires_seconds)

    async def complete_multipart(self, key: str, upload_id: str, part_count: int) -> list[int]:
        parts = self._parts_dir(key)
        if not parts.is_dir():
            raise MissingObject(key)
        missing = [n for n in range(1, part_count + 1) if not (parts / str(n)).is_file()]
        if missing:
            if self._path(key).is_file():  # a concurrent completion joined them and is
                raise MissingObject(key)  # removing the parts (it renamed the object first)
            return missing

        def join() -> None:
            # Concurrent completions each join into their own side file; the first to finish
            # renames it into place and removes the parts, and a later one that then misses a
            # part gets MissingObject (completed before: the caller reads the object's stat).
            target = self._path(key)
            partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.partial")
            try:
                with partial.open("wb") as out:
                    for number in range(1, part_count + 1):
                        with (parts / str(number)).open("rb") as part:
                            shutil.copyfileobj(part, out, 1024 * 1024)
                partial.replace(target)
            except FileNotFoundError:
                raise MissingObject(key) from None
            finally:
                partial.unlink(missing_ok=True)
            shutil.rmtree(parts, ignore_errors=True)

        await asyncio.to_thread(join)
        return []

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._parts_dir(key), True)


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
