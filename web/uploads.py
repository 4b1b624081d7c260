"""The local-folder media backend's upload endpoint: `PUT /uploads/<key>?expires=&signature=`.

It plays the part S3 plays in production: it accepts a presigned PUT and stores the bytes as they
are. Checking what they are is createTweet's job (storage/media.py). The body is cut off past
MEDIA_MAX_BYTES, so a client cannot fill the disk through a valid URL.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from storage.object_store import LocalObjectStore, UploadRejected


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
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            return PlainTextResponse(f"larger than {max_bytes} bytes", status_code=413)
    await store.put(key, bytes(body), request.headers.get("content-type", ""))
    return Response(status_code=200)
