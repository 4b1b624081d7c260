"""Media uploads and a video's processing state (rules: `social.uploads`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.websockets import WebSocketState

from resolvers.context import RequestContext
from social.errors import BadCredentials
from storage.media import MediaState, MediaStatus, Upload

MediaRef = tuple[int, int]  # (owner, media id), from the media's global id
POLL_SECONDS = 0.25  # how often a mediaProcessing subscription reads the state
FINAL = (MediaState.READY, MediaState.FAILED)


async def create_media_upload(ctx: RequestContext, content_type: str, byte_size: int) -> Upload:
    return await ctx.services.uploads.start(await ctx.viewer_id(), content_type, byte_size)


async def upload_part_url(ctx: RequestContext, ref: MediaRef, part_number: int) -> str:
    return await ctx.services.uploads.part_url(await ctx.viewer_id(), ref, part_number)


async def complete_media_upload(ctx: RequestContext, ref: MediaRef) -> MediaStatus:
    return await ctx.services.uploads.complete(await ctx.viewer_id(), ref)


async def media_status(ctx: RequestContext, ref: MediaRef) -> MediaStatus:
    return await ctx.services.uploads.status(await ctx.viewer_id(), ref)


async def media_processing(ctx: RequestContext, ref: MediaRef) -> AsyncIterator[MediaStatus]:
    """The owner's media state now, then each change, until READY or FAILED. The state lives
    in one Redis hash that the worker updates; it is read every POLL_SECONDS (a hash read on
    the owner's shard), and the socket's token is re-checked every TOKEN_RECHECK_SECONDS."""
    uploads = ctx.services.uploads
    viewer = await ctx.viewer_id()
    recheck = ctx.services.settings.token_recheck_seconds
    recheck_at = time.monotonic() + recheck
    last: tuple[MediaState, int] | None = None
    while True:
        status = await uploads.status(viewer, ref)
        if (status.state, status.attempts) != last:
            last = (status.state, status.attempts)
            yield status
        if status.state in FINAL:
            return
        await asyncio.sleep(POLL_SECONDS)
        socket = ctx.websocket
        if socket is not None and WebSocketState.DISCONNECTED in (
            socket.client_state,
            socket.application_state,
        ):
            raise asyncio.CancelledError  # as the transport expects of an ended socket
        if time.monotonic() >= recheck_at:
            if not await ctx.socket_still_authorized():
                raise BadCredentials("invalid or expired token")
            recheck_at = time.monotonic() + recheck
