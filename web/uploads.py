"""The local-folder media backend's upload endpoint: `PUT /uploads/<key>?expires=&signature=`.

It plays the part S3 plays in production: it accepts a presigned PUT (of a whole file, or of
one part of a multipart upload: `<key>.parts/<n>`) and stores the bytes as they are, streamed
to disk. Checking what they are is createTweet's job for an image and the video worker's for a
video (storage/media.py). The body is cut off past the size declared to createMediaUpload
(for a part, its share of it: 413, nothing kept), so a client cannot hold more than its
pending-bytes quota counts, and a URL whose media is no longer pending (being verified or
processed, published, attached, expired or deleted) is refused, so an upload can never replace
a file after it was checked; that is asked again once the body is complete, before the file
is moved into place (a slow body that outlived its media is dropped: 403). A whole-file PUT
whose Content-Type is not the type declared to createMediaUpload is refused (403, as S3 answers
a presigned PUT whose signed Content-Type differs), nothing kept: a client that sends the wrong
type learns it here rather than from a stricter S3. (The minio client's presigned URLs sign
only the host, so our own S3 backend does not check it; the published copy carries the verified
type on both.) A PUT without one is taken, and parts are not checked (S3 ignores a part's).
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from storage.object_store import LocalObjectStore, UploadRejected

INCOMING_KEY = re.compile(r"incoming/([0-9]{1,20})/([0-9]{1,20})(\.parts/[0-9]{1,5})?")


def same_media_type(sent: str | None, declared: str | None) -> bool:
    """Whether a PUT's Content-Type (None: not sent, taken) names the declared type; media
    types are case-insensitive and their parameters (`; charset=...`) do not count."""
    if sent is None:
        return True
    return declared is not None and sent.split(";", 1)[0].strip().lower() == declared


async def put_upload(request: Request) -> Response:
    services = request.app.state.services
    store: LocalObjectStore = services.media.objects
    key = request.path_params["key"]
    try:
        store.check_upload(
            key,
            request.query_params.get("expires", ""),
            request.query_params.get("signature", ""),
        )
    except UploadRejected as exc:
        return PlainTextResponse(str(exc), status_code=403)
    match = INCOMING_KEY.fullmatch(key)
    if match is None:
        return PlainTextResponse("this upload URL was used already or has expired", 403)
    owner, media_id = int(match[1]), int(match[2])
    part = int(match[3].rsplit("/", 1)[1]) if match[3] else None

    async def limit() -> int:
        return int(await services.media.upload_limit(owner, media_id, part))

    async def still_pending() -> bool:
        return await limit() > 0

    max_bytes = await limit()
    if max_bytes == 0:
        return PlainTextResponse("this upload URL was used already or has expired", 403)
    if part is None:
        declared = await services.media.declared_type(owner, media_id)
        if not same_media_type(request.headers.get("content-type"), declared):
            message = f"Content-Type must be {declared}, the type declared to createMediaUpload"
            return PlainTextResponse(message, 403)
    stored = await store.put_stream(key, request.stream(), max_bytes, still_pending)
    if stored == "too_large":
        return PlainTextResponse(f"larger than {max_bytes} bytes (its declared size)", 413)
    if stored == "unwanted":
        return PlainTextResponse("this upload's media was attached or expired meanwhile", 403)
    return Response(status_code=200)
