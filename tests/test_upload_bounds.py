"""The local backend's upload endpoint holds an upload to what createMediaUpload declared (size
and type), and never keeps a body that finished after its media moved on (attached, expired and
purged)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import redis

from settings import Settings
from tests.gql import CREATE_MEDIA_UPLOAD, CREATE_TWEET, gql, sign_up
from tests.images import png
from tests.servers import run_worker, serve_api, wait_until
from tests.test_media import incoming_objects


async def ticket(client: httpx.AsyncClient, token: str, kind: str, size: int) -> dict[str, str]:
    variables = {"type": kind, "size": size}
    return (await gql(client, CREATE_MEDIA_UPLOAD, variables, token=token))["createMediaUpload"]


async def put(url: str, body: bytes | AsyncIterator[bytes]) -> int:
    async with httpx.AsyncClient(timeout=60) as plain:
        return (await plain.put(url, content=body)).status_code


async def test_a_put_is_cut_off_at_its_declared_size(settings: Settings) -> None:
    """Declared 1 byte, sent 1 MiB: 413 and nothing kept, for an image and a video (before,
    the bound was MEDIA_MAX_BYTES / VIDEO_MAX_BYTES: the pending-bytes quota counted 1 byte)."""
    with serve_api(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "alice")
            for kind in ("image/png", "video/mp4"):
                small = await ticket(client, token, kind, 1)
                assert await put(small["uploadUrl"], b"\0" * 1024 * 1024) == 413, kind
                exact = await ticket(client, token, kind, 100)
                assert await put(exact["uploadUrl"], b"\0" * 101) == 413, kind
            assert incoming_objects(settings) == []
            exact = await ticket(client, token, "image/png", 100)
            assert await put(exact["uploadUrl"], b"\0" * 100) == 200  # the declared size fits
            assert len(incoming_objects(settings)) == 1


class SlowBody:
    """A request body sent in two halves; the second waits for `release`."""

    def __init__(self, first: bytes, second: bytes) -> None:
        self.first, self.second = first, second
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.first
        self.started.set()
        await self.release.wait()
        yield self.second


async def test_a_slow_put_that_ends_after_attach_or_purge_is_not_kept(
    settings: Settings, tmp_path: Path
) -> None:
    """A PUT starts while its media is pending and ends after (a) the media was attached,
    (b) the media expired and the clean-up job purged it: refused, and no incoming object
    stays behind (before: it stayed forever)."""
    quick = replace(settings, media_orphan_hours=3 / 3600)
    documents = redis.Redis.from_url(settings.documents_redis_url)
    with serve_api(quick) as url, run_worker(quick, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "alice")
            image = png()
            attached = await ticket(client, token, "image/png", len(image))
            purged = await ticket(client, token, "image/png", len(image))
            bodies = {name: SlowBody(image[:10], image[10:]) for name in ("attached", "purged")}
            puts = {
                name: asyncio.create_task(put(t["uploadUrl"], bodies[name].chunks()))
                for name, t in (("attached", attached), ("purged", purged))
            }
            for body in bodies.values():
                await asyncio.wait_for(body.started.wait(), 10)
            # (a) a complete upload through the same URL, attached to a tweet
            assert await put(attached["uploadUrl"], image) == 200
            variables = {"text": "x", "media": [attached["id"]]}
            await gql(client, CREATE_TWEET, variables, token=token)
            bodies["attached"].release.set()
            assert await puts["attached"] == 403
            # The attach deleted its upload and none came back (only the other body's partial
            # file is there, still being written).
            assert all(name.endswith(".partial") for name in incoming_objects(quick))
            # (b) expired and purged by the clean-up job (the record is gone)
            wait_until(lambda: len(list(documents.scan_iter("media:*"))) == 1, what="the purge")
            bodies["purged"].release.set()
            assert await puts["purged"] == 403
            assert incoming_objects(quick) == []
    documents.close()


async def test_a_put_of_another_content_type_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """A PUT whose Content-Type is not the type declared to createMediaUpload is refused (403,
    nothing kept), as S3 answers one whose signed Content-Type differs. Media types are
    case-insensitive and their parameters do not count; a PUT without one is taken."""
    token, _ = await sign_up(client, "alice")
    declared = await ticket(client, token, "image/png", len(png()))
    async with httpx.AsyncClient(timeout=30) as plain:
        for sent in ("image/jpeg", "application/octet-stream", "image/png-but-not"):
            headers = {"Content-Type": sent}
            refused = await plain.put(declared["uploadUrl"], content=png(), headers=headers)
            assert refused.status_code == 403, sent
            assert "Content-Type" in refused.text and "image/png" in refused.text
        assert incoming_objects(settings) == []
        headers = {"Content-Type": "Image/PNG; charset=binary"}
        taken = await plain.put(declared["uploadUrl"], content=png(), headers=headers)
        assert taken.status_code == 200
    assert len(incoming_objects(settings)) == 1
