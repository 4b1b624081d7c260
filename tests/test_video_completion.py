"""completeMediaUpload under repetition: concurrent completions of a multipart upload join its
parts once and all answer; repeated completions send one processing job, not one each; and
completions are rate limited per user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from settings import Settings
from storage.image_sandbox import ImageSandbox, SandboxLimits
from storage.media import MediaLibrary, incoming_object, video_limits
from storage.object_store import LocalObjectStore
from storage.redis_clients import open_redis
from tests.gql import gql, gql_error, sign_up
from tests.servers import serve_api
from tests.test_video import COMPLETE, put
from tests.videos import clip

FIVE_MIB = 5 * 1024 * 1024


@pytest.fixture
async def library(settings: Settings, tmp_path: Path) -> AsyncIterator[MediaLibrary]:
    documents = open_redis(settings.documents_redis_url, timeout_seconds=5)
    parted = replace(
        settings, video_multipart_threshold_bytes=FIVE_MIB, video_multipart_part_bytes=FIVE_MIB
    )
    yield MediaLibrary(
        documents,
        LocalObjectStore(tmp_path / "media", public_api_url="http://x", signing_key=b"k" * 32),
        ImageSandbox(SandboxLimits(1, 1, 1, 1, 1.0, 1)),
        cdn_base_url="http://x/media",
        max_bytes=1000,
        upload_url_ttl_seconds=60,
        expiry_seconds=3600,
        max_pending_bytes=1000,
        video=video_limits(parted),
    )
    await documents.aclose()


async def uploaded_in_parts(library: MediaLibrary, media_id: int, size: int) -> bytes:
    """A multipart upload of `size` bytes whose parts are all there."""
    upload = await library.start_upload(1, media_id, "video/mp4", size)
    assert upload.part_size and upload.part_count and upload.part_count > 1
    data = bytes(range(256)) * (size // 256)
    assert isinstance(library.objects, LocalObjectStore)
    parts = library.objects.root / f"{incoming_object(1, media_id)}.parts"
    for number in range(1, upload.part_count + 1):
        start = (number - 1) * upload.part_size
        (parts / str(number)).write_bytes(data[start : start + upload.part_size])
    return data


async def test_concurrent_completions_join_the_parts_once(library: MediaLibrary) -> None:
    """Three completions at once (each joins in a thread): before, they shared one side file
    and the losers failed with FileNotFoundError (INTERNAL_SERVER_ERROR)."""
    data = await uploaded_in_parts(library, 11, 3 * FIVE_MIB)
    sent = await asyncio.gather(*(library.complete_upload(1, 11) for _ in range(3)))
    assert sent.count(True) == 1, sent  # one processing job
    assert isinstance(library.objects, LocalObjectStore)
    joined = library.objects.root / incoming_object(1, 11)
    assert joined.read_bytes() == data
    assert sorted(p.name for p in joined.parent.iterdir()) == [joined.name]  # no side files
    status = await library.status(1, 11)
    assert status is not None and status.state.value == "PENDING"


async def test_repeated_completions_send_one_job_per_lease_period(library: MediaLibrary) -> None:
    await uploaded_in_parts(library, 12, 2 * FIVE_MIB)
    assert await library.complete_upload(1, 12) is True
    for _ in range(5):  # queued, a job already sent: nothing more to send
        assert await library.complete_upload(1, 12) is False
    quick = replace(library.video, lease_seconds=0.2)
    library.video = quick
    await asyncio.sleep(0.3)  # still queued a lease period later: the job may be lost, resend
    assert await library.complete_upload(1, 12) is True
    assert await library.complete_upload(1, 12) is False


async def test_completions_are_rate_limited_per_user(settings: Settings) -> None:
    limited = replace(settings, rate_media_completes="3/60")
    data = clip(width=16, height=16, seconds=0.5)
    with serve_api(limited) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "alice")
            upload = """mutation($n: Int!) {
              createMediaUpload(contentType: "video/mp4", byteSize: $n) { id uploadUrl } }"""
            ticket = (await gql(client, upload, {"n": len(data)}, token=token))["createMediaUpload"]
            assert await put(ticket["uploadUrl"], data) == 200
            for _ in range(3):
                done = await gql(client, COMPLETE, {"id": ticket["id"]}, token=token)
                assert done["completeMediaUpload"]["state"] == "PENDING"
            code, message = await gql_error(client, COMPLETE, {"id": ticket["id"]}, token=token)
            assert code == "RATE_LIMITED", message
