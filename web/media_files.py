"""The local backend's published files (`/media/public/...`), as a CDN would serve them: one
byte range at most, and never sniffed.

Starlette's StaticFiles answers an unparsable Range (`bytes=abc`, `items=0-5`, `bytes=10-5`)
with 400 and several ranges with multipart/byteranges (100 small ranges of a large file cost
100 parts: an amplification). RFC 9110 lets a server ignore a Range it will not honour and
answer 200 with the whole file, which is what happens here to anything but one well-formed
range (`bytes=a-b`, `bytes=a-`, `bytes=-n`); a range past the end is still 416. Every answer
carries `X-Content-Type-Options: nosniff`, so a browser never runs an upload it guesses is HTML
(published files are re-encoded images and videos, but the header costs nothing).
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SINGLE_RANGE = re.compile(rb"bytes=(?:(\d+)-(\d*)|-(\d*[1-9]\d*))")
NOSNIFF = (b"x-content-type-options", b"nosniff")


def single_range(value: bytes) -> bool:
    """True for one well-formed byte range; multi-range, other units and nonsense: False."""
    found = SINGLE_RANGE.fullmatch(value.strip())
    if found is None:
        return False
    first, last = found[1], found[2]
    return first is None or not last or int(last) >= int(first)


class MediaFiles:
    """Wraps the static files app: drops a Range it will not serve as one range, adds nosniff."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name != b"range" or single_range(value)
        ]

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), NOSNIFF]}
            await send(message)

        try:
            await self.app({**scope, "headers": headers}, receive, send_nosniff)
        except HTTPException as exc:  # a missing file (404) is raised, not answered
            answer = PlainTextResponse(exc.detail, exc.status_code, headers=exc.headers)
            await answer(scope, receive, send_nosniff)
