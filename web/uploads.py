"""The local-folder media backend's upload endpoint: `PUT /uploads/<key>?expires=&signature=`.

It plays the part S3 plays in production: it accepts a presigned PUT and stores the bytes as they
are. Checking what they are is createTweet's job (storage/media.py). The body is cut off past
MEDIA_MAX_BYTES, so a client cannot fill the disk through a valid URL, and a URL whose media is
no longer pending (being verified, published, attached, expired or deleted) is refused, so an
upload can never replace a file after it was checked.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from storage.object_store import LocalObjectStore, UploadRejected

INCOMING_KEY = re.compile(r"incoming/([0-9]{1,20})/([0-9]{1,20})")


async def put_upload(request: Request) -> Response:
    services = request.app.state.services
    store: LocalObjectStore = services.media.objects
    max_bytes: int = services.settings.media_max_bytes
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
    if match is None or not await services.media.accepts_upload(int(match[1]), int(match[2])):
        return PlainTextResponse("this upload URL was used already or has expired", 403)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            return PlainTextResponse(f"larger than {max_bytes} bytes", status_code=413)
    await store.put(key, bytes(body), request.headers.get("content-type", ""))
    return Response(status_code=200)
