"""The local-folder media backend's upload endpoint: `PUT /uploads/<key>?expires=&signature=`.

It plays the part S3 plays in production: it accepts a presigned PUT (of a whole file, or of
one part of a multipart upload: `<key>.parts/<n>`) and stores the bytes as they are, streamed
to disk. Checking what they are is createTweet's job for an image and the video worker's for a
video (storage/media.py). The body is cut off past MEDIA_MAX_BYTES (VIDEO_MAX_BYTES for a
video, its part size for a part), so a client cannot fill the disk through a valid URL, and a
URL whose media is no longer pending (being verified or processed, published, attached,
expired or deleted) is refused, so an upload can never replace a file after it was checked.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from storage.object_store import LocalObjectStore, UploadRejected

INCOMING_KEY = re.compile(r"incoming/([0-9]{1,20})/([0-9]{1,20})(\.parts/[0-9]{1,5})?")


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
    max_bytes = (
        0 if match is None else await services.media.upload_limit(int(match[1]), int(match[2]))
    )
    if max_bytes == 0:
        return PlainTextResponse("this upload URL was used already or has expired", 403)
    if not await store.put_stream(key, request.stream(), max_bytes):
        return PlainTextResponse(f"larger than {max_bytes} bytes", status_code=413)
    return Response(status_code=200)
