"""Video through the real pipeline: createMediaUpload, a real PUT (one, or parts), then
completeMediaUpload; a real Dramatiq worker processes it in the sandbox (PyAV); the state is
read by query and by subscription; the clean copy is served with Range requests on both media
backends (the local folder through the app, S3 through moto's server). Clips are made by PyAV
in the test (`tests/videos.py`)."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import av
import httpx
import pytest
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

from devstack.servers import ManagedProcess
from settings import Settings
from tests.gql import CREATE_MEDIA_UPLOAD, DELETE_TWEET, gql, gql_error, sign_up
from tests.servers import run_worker, serve_api, wait_until
from tests.test_media import on_s3
from tests.videos import (
    LOCATION,
    clip,
    h264_with_location,
    looks_like,
    picture,
    top_level_atoms,
    vp9_webm,
    webm_claiming,
)

COMPLETE = """
mutation($id: ID!) { completeMediaUpload(id: $id) { id state reason attempts } }
"""
MEDIA = """
query($id: ID!) {
  media(id: $id) {
    id state reason attempts
    media { __typename url width height contentType ... on Video { posterUrl durationMs } }
  }
}
"""
PART_URL = "mutation($id: ID!, $n: Int!) { mediaUploadPartUrl(id: $id, partNumber: $n) }"
UPLOAD = """
mutation($type: String!, $size: Int!) {
  createMediaUpload(contentType: $type, byteSize: $size) {
    id uploadUrl expiresInSeconds partSize partCount
  }
}
"""
TWEET_WITH_MEDIA = """
mutation($text: String!, $media: [ID!]) {
  createTweet(text: $text, mediaIds: $media) {
    id
    media { __typename url width height contentType ... on Video { posterUrl durationMs } }
  }
}
"""
WATCH = "subscription($id: ID!) { mediaProcessing(id: $id) { id state reason } }"

# Fast redelivery for the tests that run a worker: a dead worker's messages come back after 2 s.
QUICK_JOBS = {"broker_heartbeat_timeout_ms": 2000, "broker_maintenance_chance": 1_000_000}


@pytest.fixture(params=["local", "s3"])
def video_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    quick = replace(settings, **QUICK_JOBS)
    if request.param == "local":
        return quick
    return on_s3(quick, request.getfixturevalue("s3_server"))


@pytest.fixture
def local_settings(settings: Settings) -> Settings:
    return replace(settings, **QUICK_JOBS)


@pytest.fixture
def stack(video_settings: Settings, tmp_path: Path) -> Iterator[str]:
    with serve_api(video_settings) as url, run_worker(video_settings, tmp_path / "worker.log"):
        yield url


@pytest.fixture
async def client(stack: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack, timeout=30) as http:
        yield http


@asynccontextmanager
async def watching(api_url: str, token: str, media_id: str) -> AsyncIterator[ClientConnection]:
    """A socket authenticated with `token`, subscribed to mediaProcessing(media_id) as "1"."""
    url = api_url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:
        init = {"Authorization": f"Bearer {token}"}
        await socket.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        payload = {"query": WATCH, "variables": {"id": media_id}}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        yield socket


async def put(url: str, data: bytes, content_type: str = "") -> int:
    headers = {"Content-Type": content_type} if content_type else {}
    async with httpx.AsyncClient(timeout=60) as plain:
        return (await plain.put(url, content=data, headers=headers)).status_code


async def upload_video(
    client: httpx.AsyncClient,
    token: str,
    data: bytes,
    content_type: str = "video/mp4",
    declared: int | None = None,
) -> str:
    """createMediaUpload, one PUT, completeMediaUpload: the media id."""
    variables = {"type": content_type, "size": declared or len(data)}
    ticket = (await gql(client, UPLOAD, variables, token=token))["createMediaUpload"]
    assert ticket["partCount"] is None
    assert await put(ticket["uploadUrl"], data, content_type) == 200
    done = (await gql(client, COMPLETE, {"id": ticket["id"]}, token=token))["completeMediaUpload"]
    assert done["state"] in ("PENDING", "PROCESSING", "READY")
    return ticket["id"]


async def settled(client: httpx.AsyncClient, token: str, media_id: str, seconds=60.0) -> dict:
    """The media's state once READY or FAILED, polled through the query."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        state = (await gql(client, MEDIA, {"id": media_id}, token=token))["media"]
        if state["state"] in ("READY", "FAILED"):
            return state
        assert asyncio.get_running_loop().time() < deadline, state
        await asyncio.sleep(0.1)


async def fetch(url: str, headers: dict | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as plain:
        return await plain.get(url, headers=headers or {})


def stored_files(settings: Settings) -> list[str]:
    root = Path(settings.media_local_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_h264_with_location_is_cleaned_played_ranged_and_deleted(
    client: httpx.AsyncClient, video_settings: Settings
) -> None:
    token, _ = await sign_up(client, "alice")
    original = h264_with_location(width=64, height=48, seconds=2)
    with av.open(io.BytesIO(original)) as probe:
        assert probe.metadata["location"] == LOCATION  # the upload does carry a location
    media_id = await upload_video(client, token, original)
    state = await settled(client, token, media_id)
    assert state["state"] == "READY", state
    video = state["media"]
    assert video["__typename"] == "Video"
    assert (video["width"], video["height"], video["contentType"]) == (64, 48, "video/mp4")
    assert 1900 <= video["durationMs"] <= 2100

    served = await fetch(video["url"])
    assert served.status_code == 200
    body = served.content
    atoms = top_level_atoms(body)
    assert atoms.index("moov") < atoms.index("mdat"), atoms  # faststart: the index first
    with av.open(io.BytesIO(body)) as result:
        tags = dict(result.metadata)
        assert not any("location" in key or key in ("title", "encoder") for key in tags), tags
        assert [s.codec_context.name for s in result.streams] == ["h264", "aac"]
    assert b"+52.5200" not in body and b"Lavf" not in body and b"Holiday" not in body
    poster = await fetch(video["posterUrl"])
    with Image.open(io.BytesIO(poster.content)) as image:
        image.load()
        assert (image.format, image.size) == ("JPEG", (64, 48))

    # Range: seeking asks for a slice; the right bytes come back with 206.
    ranged = await fetch(video["url"], {"Range": "bytes=100-1099"})
    assert ranged.status_code == 206, ranged.status_code
    assert ranged.headers["content-range"] == f"bytes 100-1099/{len(body)}"
    assert ranged.content == body[100:1100]
    tail = await fetch(video["url"], {"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == body[-500:]

    posted = await gql(client, TWEET_WITH_MEDIA, {"text": "clip", "media": [media_id]}, token=token)
    [attached] = posted["createTweet"]["media"]
    assert attached == video
    await gql(client, DELETE_TWEET, {"id": posted["createTweet"]["id"]}, token=token)

    async def gone() -> bool:
        # A file deleted while it is fetched still comes whole (web/held_files.py): no retry.
        codes = [(await fetch(u)).status_code for u in (video["url"], video["posterUrl"])]
        return all(code in (403, 404) for code in codes)

    for _ in range(200):
        if await gone():
            break
        await asyncio.sleep(0.1)
    assert await gone()
    if video_settings.media_backend == "local":
        assert stored_files(video_settings) == []


async def test_vp9_webm_is_transcoded_to_h264_aac(client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(client, "alice")
    media_id = await upload_video(client, token, vp9_webm(width=64, height=48), "video/webm")
    state = await settled(client, token, media_id)
    assert state["state"] == "READY", state
    body = (await fetch(state["media"]["url"])).content
    with av.open(io.BytesIO(body)) as result:
        assert result.format.name.startswith("mov,mp4")
        assert [s.codec_context.name for s in result.streams] == ["h264", "aac"]
        assert result.streams.video[0].codec_context.format.name == "yuv420p"
    assert top_level_atoms(body)[:2] == ["ftyp", "moov"]


async def test_a_rotated_phone_clip_is_reported_and_postered_as_displayed(
    local_settings: Settings, tmp_path: Path
) -> None:
    """A portrait clip as a phone stores it: 64x48 frames and a display rotation. Remuxed
    (H.264 MP4 turned 90 degrees counterclockwise) or transcoded (VP9 WebM turned -90, i.e.
    clockwise, as an iPhone writes), the video's width and height are the displayed 48x64,
    its poster is upright at that size, and the clean copy carries the turn in its display
    matrix: its frames shown as a player applies that matrix are upright too."""
    cases = {
        "remux": (clip(width=64, height=48, seconds=1, rotation=90), "video/mp4", 90),
        "transcode": (vp9_webm(width=64, height=48, rotation=-90), "video/webm", -90),
    }
    with serve_api(local_settings) as url, run_worker(local_settings, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            token, _ = await sign_up(client, "alice")
            ids = {}
            for name, (data, kind, _) in cases.items():
                ids[name] = await upload_video(client, token, data, kind)
            for name, (_, _, degrees) in cases.items():
                state = await settled(client, token, ids[name])
                assert state["state"] == "READY", (name, state)
                video = state["media"]
                assert (video["width"], video["height"]) == (48, 64), (name, video)
                upright = picture(64, 48, 0).rotate(degrees, expand=True)  # counterclockwise
                assert not looks_like(upright.rotate(180), upright)  # the check tells them apart
                with Image.open(io.BytesIO((await fetch(video["posterUrl"])).content)) as poster:
                    poster.load()
                    assert poster.size == (48, 64), name
                    assert looks_like(poster, upright), name
                body = (await fetch(video["url"])).content
                with av.open(io.BytesIO(body)) as result:
                    frame = next(result.decode(video=0))
                assert (frame.width, frame.height, frame.rotation) == (64, 48, degrees), name
                assert looks_like(frame.to_image().rotate(frame.rotation, expand=True), upright)


def _padded(data: bytes, total: int) -> bytes:
    """An MP4 followed by a `free` box: still a valid file, `total` bytes long."""
    pad = total - len(data)
    return data + struct.pack(">I4s", pad, b"free") + bytes(pad - 8)


async def test_multipart_upload_resumes_after_a_missing_part(
    video_settings: Settings, tmp_path: Path
) -> None:
    """A 6 MiB upload in 5 MiB parts: part 2 arrives, part 1 'dropped'; completion names the
    missing part; a fresh URL for it, then completion works and the video is READY."""
    five = 5 * 1024 * 1024
    parted = replace(
        video_settings, video_multipart_threshold_bytes=five, video_multipart_part_bytes=five
    )
    data = _padded(clip(seconds=1), 6 * 1024 * 1024)
    with serve_api(parted) as url, run_worker(parted, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            token, _ = await sign_up(client, "alice")
            variables = {"type": "video/mp4", "size": len(data)}
            ticket = (await gql(client, UPLOAD, variables, token=token))["createMediaUpload"]
            assert (ticket["partSize"], ticket["partCount"]) == (five, 2)
            media_id = ticket["id"]
            second = await gql(client, PART_URL, {"id": media_id, "n": 2}, token=token)
            assert await put(second["mediaUploadPartUrl"], data[five:]) == 200
            code, message = await gql_error(client, COMPLETE, {"id": media_id}, token=token)
            assert code == "BAD_USER_INPUT" and "lacks parts 1:" in message, message
            assert await put(ticket["uploadUrl"], data[:five]) == 200  # part 1, resent
            await gql(client, COMPLETE, {"id": media_id}, token=token)
            state = await settled(client, token, media_id)
            assert state["state"] == "READY", state
            code, _ = await gql_error(client, PART_URL, {"id": media_id, "n": 1}, token=token)
            assert code == "BAD_USER_INPUT"  # completed: no more parts


async def test_refusals_are_coded_and_leave_nothing_behind(
    local_settings: Settings, tmp_path: Path
) -> None:
    strict = replace(local_settings, video_max_seconds=2.0)
    good = clip(seconds=1)
    full = clip(seconds=2, faststart=True)
    cases = {
        "too long": (clip(width=16, height=16, seconds=3, fps=4), None, "lasts 3 s"),
        "too many pixels": (clip(width=2000, height=64, seconds=0.3), None, "2000x64"),
        "truncated": (full[: len(full) // 2], None, "truncated"),
        "text named .mp4": (b"just some text, honest\n" * 40, None, "not an MP4"),
        "claims 100,000x100,000": (webm_claiming(100_000, 100_000), None, "dimensions"),
    }
    with serve_api(strict) as url, run_worker(strict, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            token, _ = await sign_up(client, "alice")
            ids = {}
            for name, (data, declared, _) in cases.items():
                kind = "video/webm" if name.startswith("claims") else "video/mp4"
                ids[name] = await upload_video(client, token, data, kind, declared)
            for name, (_, _, reason) in cases.items():
                state = await settled(client, token, ids[name])
                assert state["state"] == "FAILED", (name, state)
                assert reason in state["reason"], (name, state["reason"])
                variables = {"text": "x", "media": [ids[name]]}
                code, message = await gql_error(client, TWEET_WITH_MEDIA, variables, token=token)
                assert code == "BAD_USER_INPUT" and "could not be processed" in message
            assert stored_files(strict) == []  # every upload deleted, nothing published
            # Larger than declared: the local backend cuts the PUT off (413, nothing kept); on
            # S3 the worker refuses it ("larger than declared").
            variables = {"type": "video/mp4", "size": len(good) - 100}
            ticket = (await gql(client, UPLOAD, variables, token=token))["createMediaUpload"]
            assert await put(ticket["uploadUrl"], good, "video/mp4") == 413
            assert stored_files(strict) == []


async def test_tweet_rules_for_videos(local_settings: Settings, tmp_path: Path) -> None:
    """Not READY: MEDIA_NOT_READY; a video with anything else: refused; someone else's media:
    FORBIDDEN (query, completion and subscription alike)."""
    with serve_api(local_settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            token, _ = await sign_up(client, "alice")
            other, _ = await sign_up(client, "mallory")
            data = clip(seconds=1)
            variables = {"type": "video/mp4", "size": len(data)}
            ticket = (await gql(client, UPLOAD, variables, token=token))["createMediaUpload"]
            media_id = ticket["id"]
            assert await put(ticket["uploadUrl"], data, "video/mp4") == 200
            state = (await gql(client, MEDIA, {"id": media_id}, token=token))["media"]
            assert (state["state"], state["media"]) == ("PENDING", None)
            tweet = {"text": "x", "media": [media_id]}
            code, message = await gql_error(client, TWEET_WITH_MEDIA, tweet, token=token)
            assert code == "MEDIA_NOT_READY" and "complete its upload" in message, message
            for operation in (MEDIA, COMPLETE):
                code, _ = await gql_error(client, operation, {"id": media_id}, token=other)
                assert code == "FORBIDDEN"
            async with watching(url, other, media_id) as socket:
                answer = json.loads(await asyncio.wait_for(socket.recv(), 10))
                [error] = answer["payload"]["errors"]  # in a `next`, then `complete`
                assert error["extensions"]["code"] == "FORBIDDEN", answer
                assert json.loads(await socket.recv())["type"] == "complete"
            image_ticket = await gql(
                client, CREATE_MEDIA_UPLOAD, {"type": "image/png", "size": 10}, token=token
            )
            mixed = {"text": "x", "media": [media_id, image_ticket["createMediaUpload"]["id"]]}
            code, message = await gql_error(client, TWEET_WITH_MEDIA, mixed, token=token)
            assert code == "BAD_USER_INPUT" and "1 video" in message, message


async def test_subscription_follows_processing_to_ready(
    local_settings: Settings, tmp_path: Path
) -> None:
    with serve_api(local_settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            token, _ = await sign_up(client, "alice")
            media_id = await upload_video(client, token, clip(seconds=1))
            async with watching(url, token, media_id) as socket:
                states = []

                async def receive() -> dict:
                    return json.loads(await asyncio.wait_for(socket.recv(), 30))

                first = await receive()
                states.append(first["payload"]["data"]["mediaProcessing"]["state"])
                assert states == ["PENDING"]  # queued: no worker runs yet
                with run_worker(local_settings, tmp_path / "worker.log"):
                    while (message := await receive())["type"] == "next":
                        states.append(message["payload"]["data"]["mediaProcessing"]["state"])
                assert message["type"] == "complete", message
                assert states[-1] == "READY" and set(states) <= {"PENDING", "PROCESSING", "READY"}


async def test_a_worker_killed_mid_processing_does_not_leave_it_processing(
    local_settings: Settings, tmp_path: Path
) -> None:
    """kill -9 of the worker (and its sandbox child) while the video is PROCESSING: the
    broker redelivers the message once the dead worker's heartbeats stop, the new worker
    waits out the dead one's lease, takes it (a second attempt) and finishes."""
    quick = replace(local_settings, video_lease_seconds=2.0)
    # 4:4:4 H.264 is not web-playable: transcoded, so processing takes a few seconds.
    slow = clip(width=640, height=480, seconds=6, fps=30, pix_fmt="yuv444p", audio_codec=None)
    with serve_api(quick) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            token, _ = await sign_up(client, "alice")
            with run_worker(quick, tmp_path / "worker-1.log") as first:
                media_id = await upload_video(client, token, slow)
                for _ in range(600):
                    state = (await gql(client, MEDIA, {"id": media_id}, token=token))["media"]
                    if state["state"] != "PENDING":
                        break
                    await asyncio.sleep(0.02)
                assert state["state"] == "PROCESSING", state
                kill(first)
            with run_worker(quick, tmp_path / "worker-2.log"):
                state = await settled(client, token, media_id, seconds=90)
    assert state["state"] == "READY", state
    assert state["attempts"] == 2, state


def kill(worker: ManagedProcess) -> None:
    worker.kill()  # SIGKILL to its process group: the worker processes and the sandbox child
    wait_until(lambda: not worker.running(), what="the worker to die")
