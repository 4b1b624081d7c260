"""Media through the presigned-upload flow, on the local folder backend and on S3 (moto's server
over HTTP, through the minio client): upload, verification, EXIF stripping, public URLs, and the
abuse the flow must survive (decompression bombs, races, re-used URLs, upload floods)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import redis
from minio import Minio

from resolvers.ids import parse_media_global_id
from settings import Settings
from storage.image_sandbox import ImageSandbox, SandboxLimits
from storage.images import InvalidImage
from storage.media import MediaLibrary, UploadQuotaExceeded, video_limits
from storage.object_store import LocalObjectStore
from storage.redis_clients import open_redis
from tests.conftest import RedisServer, cheap_settings
from tests.gql import (
    CREATE_MEDIA_UPLOAD,
    CREATE_TWEET,
    DELETE_TWEET,
    gql,
    gql_error,
    post,
    sign_up,
)
from tests.images import exif_of, gif_bomb, jpeg_with_gps, png
from tests.servers import ROOT, run_worker, serve_api, wait_until


@pytest.fixture(params=["local", "s3"])
def media_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "local":
        return settings
    return on_s3(settings, request.getfixturevalue("s3_server"))


def on_s3(settings: Settings, endpoint: str) -> Settings:
    """`settings` with media on moto's S3 server at `endpoint`, in a bucket of its own."""
    bucket = f"media-{uuid.uuid4().hex[:8]}"
    return replace(
        settings,
        media_backend="s3",
        s3_endpoint=endpoint,
        s3_access_key="testing",
        s3_secret_key="testing",
        s3_bucket=bucket,
        cdn_base_url=f"http://{endpoint}/{bucket}",
    )


@pytest.fixture
async def media_client(media_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with serve_api(media_settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client


async def upload_ticket(
    client: httpx.AsyncClient,
    token: str,
    data: bytes,
    content_type: str,
    declared_size: int | None = None,
) -> dict[str, str]:
    """createMediaUpload, then a real HTTP PUT of the bytes to the presigned URL."""
    variables = {"type": content_type, "size": declared_size or len(data)}
    ticket = (await gql(client, CREATE_MEDIA_UPLOAD, variables, token=token))["createMediaUpload"]
    assert await put(ticket["uploadUrl"], data, content_type) == 200
    return ticket


async def upload(
    client: httpx.AsyncClient,
    token: str,
    data: bytes,
    content_type: str,
    declared_size: int | None = None,
) -> str:
    return (await upload_ticket(client, token, data, content_type, declared_size))["id"]


async def put(url: str, data: bytes, content_type: str) -> int:
    async with httpx.AsyncClient(timeout=30) as plain:
        response = await plain.put(url, content=data, headers={"Content-Type": content_type})
    return response.status_code


async def test_upload_tweet_and_fetch_a_clean_image(media_client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(media_client, "alice")
    original = jpeg_with_gps(64, 48)
    assert exif_of(original)  # the test file does carry GPS data
    photo = await upload(media_client, token, original, "image/jpeg")
    diagram = await upload(media_client, token, png(20, 10), "image/png")
    variables = {"text": "look", "media": [photo, diagram]}
    created = (await gql(media_client, CREATE_TWEET, variables, token=token))["createTweet"]
    jpeg, png_item = created["media"]
    assert (jpeg["width"], jpeg["height"], jpeg["contentType"]) == (64, 48, "image/jpeg")
    assert (png_item["width"], png_item["height"]) == (20, 10)
    async with httpx.AsyncClient(timeout=30) as plain:
        published = await plain.get(jpeg["url"])
    assert published.status_code == 200, jpeg["url"]
    assert published.content.startswith(b"\xff\xd8\xff")
    assert exif_of(published.content) == {}
    assert b"SpyCam" not in published.content


async def test_uploads_that_lie_are_refused(
    media_client: httpx.AsyncClient, media_settings: Settings
) -> None:
    token, _ = await sign_up(media_client, "alice")
    cases = [
        await upload(media_client, token, png(), "image/jpeg"),  # a PNG declared as JPEG
        await upload(media_client, token, b"\xff\xd8\xff" + b"not really" * 20, "image/jpeg"),
    ]
    variables = {"type": "image/jpeg", "size": 100}
    ticket = await gql(media_client, CREATE_MEDIA_UPLOAD, variables, token=token)
    status = await put(ticket["createMediaUpload"]["uploadUrl"], jpeg_with_gps(), "image/jpeg")
    if media_settings.media_backend == "local":
        assert status == 413  # cut off at its declared size, nothing kept
    else:  # S3 takes it (a presigned PUT does not bound the size); the tweet refuses it
        assert status == 200
        cases.append(ticket["createMediaUpload"]["id"])
    for media_id in cases:
        variables = {"text": "x", "media": [media_id]}
        code, _ = await gql_error(media_client, CREATE_TWEET, variables, token=token)
        assert code == "BAD_USER_INPUT"
    variables = {"type": "image/jpeg", "size": 10}
    ticket = await gql(media_client, CREATE_MEDIA_UPLOAD, variables, token=token)
    never_uploaded = ticket["createMediaUpload"]["id"]
    variables = {"text": "x", "media": [never_uploaded]}
    code, message = await gql_error(media_client, CREATE_TWEET, variables, token=token)
    assert code == "BAD_USER_INPUT" and "not been uploaded" in message
    # Named by the id the client sent, never by the internal number.
    assert message.startswith(f"media {never_uploaded} ")
    assert str(parse_media_global_id(never_uploaded)[1]) not in message


async def test_a_corrupt_image_is_refused_with_a_fixed_reason(client: httpx.AsyncClient) -> None:
    """PNG magic bytes, then zeros or junk: the refusal says so in fixed words; what Pillow
    said (the repr of its buffer, with a memory address) stays in the server's log."""
    token, _ = await sign_up(client, "alice")
    for junk in (b"\0" * 100, b"junk" * 20):
        corrupt = await upload(client, token, b"\x89PNG\r\n\x1a\n" + junk, "image/png")
        variables = {"text": "x", "media": [corrupt]}
        code, message = await gql_error(client, CREATE_TWEET, variables, token=token)
        assert code == "BAD_USER_INPUT"
        assert message == f"media {corrupt} is not a usable image: cannot decode the image"
        assert not re.search(r"0x|<|object at", message), message


async def test_bad_upload_requests(media_client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(media_client, "alice")
    for variables in [
        {"type": "image/svg+xml", "size": 100},
        {"type": "text/plain", "size": 100},
        {"type": "image/png", "size": 0},
        {"type": "image/png", "size": 5 * 1024 * 1024 + 1},
    ]:
        code, _ = await gql_error(media_client, CREATE_MEDIA_UPLOAD, variables, token=token)
        assert code == "BAD_USER_INPUT", variables
    code, _ = await gql_error(media_client, CREATE_MEDIA_UPLOAD, {"type": "image/png", "size": 9})
    assert code == "UNAUTHENTICATED"


async def test_media_attaches_once(media_client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(media_client, "alice")
    photo = await upload(media_client, token, png(), "image/png")
    await gql(media_client, CREATE_TWEET, {"text": "one", "media": [photo]}, token=token)
    variables = {"text": "two", "media": [photo]}
    code, _ = await gql_error(media_client, CREATE_TWEET, variables, token=token)
    assert code == "BAD_USER_INPUT"


async def test_local_upload_url_is_signed_and_bounded(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token, _ = await sign_up(client, "alice")
    variables = {"type": "image/png", "size": 100}
    ticket = (await gql(client, CREATE_MEDIA_UPLOAD, variables, token=token))["createMediaUpload"]
    url = ticket["uploadUrl"]
    async with httpx.AsyncClient(timeout=30) as plain:
        forged = await plain.put(url.replace("signature=", "signature=0"), content=png())
        assert forged.status_code == 403
        huge = b"\0" * (settings.media_max_bytes + 1)
        assert (await plain.put(url, content=huge)).status_code == 413


async def test_workers_remove_orphans_and_deleted_media(settings: Settings, tmp_path: Path) -> None:
    quick = replace(settings, media_orphan_hours=2 / 3600)  # orphans go after 2 s
    with serve_api(quick) as url, run_worker(quick, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "alice")
            orphan = await upload(client, token, png(), "image/png")
            kept = await upload(client, token, png(), "image/png")
            variables = {"text": "with media", "media": [kept]}
            created = (await gql(client, CREATE_TWEET, variables, token=token))["createTweet"]
            media_dir = Path(quick.media_local_dir)
            published = sorted(p.name for p in (media_dir / "public").rglob("*.png"))
            assert len(published) == 1

            def files() -> list[str]:
                return sorted(p.name for p in media_dir.rglob("*") if p.is_file())

            wait_until(lambda: files() == published, what="the orphan upload to be removed")
            assert orphan  # its upload file is gone; the attached one stays after the delay
            await gql(client, DELETE_TWEET, {"id": created["id"]}, token=token)
            wait_until(lambda: files() == [], what="the deleted tweet's media to be removed")
            async with httpx.AsyncClient(timeout=30) as plain:
                assert (await plain.get(created["media"][0]["url"])).status_code == 404


def vm_kib(field: str) -> int:
    """A memory figure of this process, which runs the API under test (uvicorn in a thread)."""
    status = Path(f"/proc/{os.getpid()}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)[1])


def reset_peak_rss() -> None:
    """Restart this process's VmHWM (peak RSS) from its current RSS."""
    Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")


async def test_animated_bomb_is_refused_before_decoding(media_client: httpx.AsyncClient) -> None:
    """20 frames of 6300x6300 in 600 KB: each frame is under the pixel cap, the whole is 20
    times over it, and decoding it all took gigabytes. Refused from its headers, in the
    sandbox: the API process does not grow."""
    token, _ = await sign_up(media_client, "alice")
    bomb = gif_bomb(frames=20, width=6300, height=6300)
    assert len(bomb) < 1024 * 1024
    bomb_id = await upload(media_client, token, bomb, "image/gif")
    many_frames = await upload(media_client, token, gif_bomb(101, 8, 8), "image/gif")
    reset_peak_rss()
    before = vm_kib("VmRSS")
    variables = {"text": "boom", "media": [bomb_id]}
    code, message = await gql_error(media_client, CREATE_TWEET, variables, token=token)
    assert code == "BAD_USER_INPUT" and "pixels" in message, message
    assert vm_kib("VmHWM") - before < 100 * 1024  # peak growth under 100 MiB (it was 2 GB)
    variables = {"text": "flicker", "media": [many_frames]}
    code, message = await gql_error(media_client, CREATE_TWEET, variables, token=token)
    assert code == "BAD_USER_INPUT" and "more than 100 frames" in message, message


async def test_sandbox_bounds_memory_and_time() -> None:
    """What the header checks cannot see, the child's limits catch: an image within the pixel
    cap that needs more memory to decode than the child may have, and a child that is slow."""
    limits = SandboxLimits(
        max_pixels=40_000_000,
        max_frames=10,
        memory_bytes=1536 * 1024 * 1024,
        cpu_seconds=10,
        timeout_seconds=20,
        concurrency=1,
    )
    big = png(4000, 3000)  # 48 MB decoded
    clean = await ImageSandbox(limits).clean_copy(big, "image/png")
    assert (clean.width, clean.height, clean.extension) == (4000, 3000, "png")
    for tight in (
        replace(limits, memory_bytes=80 * 1024 * 1024),
        replace(limits, timeout_seconds=0.01),
    ):
        with pytest.raises(InvalidImage, match="more memory"):
            await ImageSandbox(tight).clean_copy(big, "image/png")


async def test_non_ascii_upload_signature_is_forbidden(client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(client, "alice")
    variables = {"type": "image/png", "size": 100}
    ticket = (await gql(client, CREATE_MEDIA_UPLOAD, variables, token=token))["createMediaUpload"]
    base = ticket["uploadUrl"].split("signature=")[0]
    for signature in ("%C3%A9t%C3%A9", "%E2%82%AC" * 32, "%FF%FE"):
        assert await put(f"{base}signature={signature}", png(), "image/png") == 403


async def test_concurrent_tweets_attaching_the_same_media(media_client: httpx.AsyncClient) -> None:
    """Six tweets race for one image: one wins, the others get a clear coded error, and what
    is left is one tweet with a working image."""
    token, _ = await sign_up(media_client, "alice")
    photo = await upload(media_client, token, jpeg_with_gps(), "image/jpeg")
    bodies = await asyncio.gather(
        *(
            post(media_client, CREATE_TWEET, {"text": f"race {n}", "media": [photo]}, token)
            for n in range(6)
        )
    )
    won = [body["data"]["createTweet"] for body in bodies if not body.get("errors")]
    lost = [body["errors"] for body in bodies if body.get("errors")]
    assert len(won) == 1, bodies
    for errors in lost:
        [error] = errors
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert f"media {photo} is already" in error["message"] and "attached" in error["message"]
    [item] = won[0]["media"]
    async with httpx.AsyncClient(timeout=30) as plain:
        assert (await plain.get(item["url"])).status_code == 200
    variables = {"text": "again", "media": [photo]}
    code, message = await gql_error(media_client, CREATE_TWEET, variables, token=token)
    assert code == "BAD_USER_INPUT" and "already attached" in message


def incoming_objects(settings: Settings) -> list[str]:
    """The upload objects (never public) the media backend still holds."""
    if settings.media_backend == "local":
        root = Path(settings.media_local_dir) / "incoming"
        return sorted(str(p) for p in root.rglob("*") if p.is_file())
    s3 = Minio(settings.s3_endpoint, "testing", "testing", secure=False)
    listed = s3.list_objects(settings.s3_bucket, prefix="incoming/", recursive=True)
    return sorted(o.object_name for o in listed)


async def test_used_upload_url_is_refused_or_never_kept(
    media_settings: Settings, tmp_path: Path
) -> None:
    """After its media is attached, the upload URL is refused (the local backend checks the
    record). S3 cannot revoke a presigned URL, so what it accepts is deleted by the clean-up
    job when the upload would have expired: nothing sent through a used URL stays."""
    quick = replace(media_settings, media_orphan_hours=3 / 3600)
    with serve_api(quick) as url, run_worker(quick, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "alice")
            ticket = await upload_ticket(client, token, png(), "image/png")
            variables = {"text": "with media", "media": [ticket["id"]]}
            created = (await gql(client, CREATE_TWEET, variables, token=token))["createTweet"]
            assert incoming_objects(quick) == []
            status = await put(ticket["uploadUrl"], png(30, 30), "image/png")
            if quick.media_backend == "local":
                assert status == 403
            wait_until(lambda: incoming_objects(quick) == [], what="the re-upload to go")
            async with httpx.AsyncClient(timeout=30) as plain:
                published = await plain.get(created["media"][0]["url"])
            assert published.status_code == 200 and published.content.startswith(b"\x89PNG")


async def test_uploads_are_rate_limited_and_bounded(settings: Settings) -> None:
    """createMediaUpload is limited per user, unattached uploads are bounded in declared
    bytes per user (attaching one frees its share), and they expire after an hour."""
    bounded = replace(settings, rate_media_uploads="4/60", media_max_pending_bytes=10_000)
    with serve_api(bounded) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "alice")
            image = png()
            first = await upload(client, token, image, "image/png", declared_size=4_000)
            await upload(client, token, image, "image/png", declared_size=4_000)
            variables = {"type": "image/png", "size": 4_000}
            body = await post(client, CREATE_MEDIA_UPLOAD, variables, token)
            [error] = body["errors"]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert "unattached uploads" in error["message"]
            assert 3590 <= error["extensions"]["retryAfter"] <= 3600  # the oldest expires
            await gql(client, CREATE_TWEET, {"text": "one", "media": [first]}, token=token)
            await upload(client, token, image, "image/png", declared_size=4_000)
            small = {"type": "image/png", "size": 1_000}  # within the byte bound
            code, message = await gql_error(client, CREATE_MEDIA_UPLOAD, small, token=token)
            assert code == "RATE_LIMITED" and "too many" in message  # the fifth in a minute
            other, _ = await sign_up(client, "bob")
            await upload(client, other, image, "image/png")
    documents = redis.Redis.from_url(settings.documents_redis_url)
    try:
        for key in documents.scan_iter("media:*"):
            created, expires = documents.hmget(key, ["created_at_ms", "expires_at_ms"])
            assert int(expires) - int(created) == 3600 * 1000
    finally:
        documents.close()


async def test_expired_upload_is_refused(settings: Settings) -> None:
    """An upload expires `MEDIA_ORPHAN_HOURS` after it was started, even before the clean-up
    job (no worker runs here) deletes it."""
    quick = replace(settings, media_orphan_hours=1 / 3600)
    with serve_api(quick) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "alice")
            variables = {"type": "image/png", "size": 100}
            ticket = await gql(client, CREATE_MEDIA_UPLOAD, variables, token=token)
            media_id = ticket["createMediaUpload"]["id"]
            assert ticket["createMediaUpload"]["expiresInSeconds"] == 1  # not past the upload
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while True:  # "not uploaded" until the expiry passes
                variables = {"text": "late", "media": [media_id]}
                code, message = await gql_error(client, CREATE_TWEET, variables, token=token)
                assert code == "BAD_USER_INPUT", message
                if "expired" in message or loop.time() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert message == f"media {media_id} has expired: upload it again"


async def test_upload_quota_on_a_redis_cluster(
    redis_cluster: list[RedisServer], tmp_path: Path
) -> None:
    """The quota script reads the owner's records through one hash-tagged slot."""
    for node in redis_cluster:
        node.client().flushall()
    documents = open_redis(redis_cluster[0].url, timeout_seconds=2, cluster=True)
    objects = LocalObjectStore(tmp_path, public_api_url="http://x", signing_key=b"k" * 32)
    limits = SandboxLimits(1, 1, 1, 1, 1.0, 1)
    library = MediaLibrary(
        documents,
        objects,
        ImageSandbox(limits),
        cdn_base_url="http://x/media",
        max_bytes=1000,
        upload_url_ttl_seconds=60,
        expiry_seconds=3600,
        max_pending_bytes=1000,
        video=video_limits(cheap_settings()),
    )
    try:
        for owner in (7, 8, 9):
            await library.start_upload(owner, 1, "image/png", 600)
            with pytest.raises(UploadQuotaExceeded):
                await library.start_upload(owner, 2, "image/png", 600)
            await library.start_upload(owner, 3, "image/png", 400)
    finally:
        await documents.aclose()


def test_readme_image_example_runs_as_pasted(settings: Settings, tmp_path: Path) -> None:
    """The README's image walk-through is a shell block that works end to end: only the API
    address is changed to the server under test."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("Images take three steps") :]
    start = section.index("```sh\n") + len("```sh\n")
    block = section[start : section.index("\n```", start)]
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")  # it runs from a checkout
    with serve_api(settings) as url:
        script = block.replace("http://127.0.0.1:8000/graphql", f"{url}/graphql")
        assert script != block
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.splitlines()[-1])
        [item] = answer["data"]["createTweet"]["media"]
        assert (item["width"], item["height"]) == (640, 480)
        assert httpx.get(item["url"], timeout=30).status_code == 200
