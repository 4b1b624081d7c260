"""Media through the presigned-upload flow, on the local folder backend and on S3 (moto's server
over HTTP, through the minio client): upload, verification, EXIF stripping, public URLs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from settings import Settings
from tests.gql import CREATE_MEDIA_UPLOAD, CREATE_TWEET, DELETE_TWEET, gql, gql_error, sign_up
from tests.images import exif_of, jpeg_with_gps, png
from tests.servers import run_worker, serve_api, wait_until


@pytest.fixture(params=["local", "s3"])
def media_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "local":
        return settings
    endpoint: str = request.getfixturevalue("s3_server")
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


async def upload(
    client: httpx.AsyncClient,
    token: str,
    data: bytes,
    content_type: str,
    declared_size: int | None = None,
) -> str:
    """createMediaUpload, then a real HTTP PUT of the bytes to the presigned URL."""
    variables = {"type": content_type, "size": declared_size or len(data)}
    ticket = (await gql(client, CREATE_MEDIA_UPLOAD, variables, token=token))["createMediaUpload"]
    async with httpx.AsyncClient(timeout=30) as plain:
        put = await plain.put(
            ticket["uploadUrl"], content=data, headers={"Content-Type": content_type}
        )
    assert put.status_code == 200, put.text
    return ticket["id"]


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


async def test_uploads_that_lie_are_refused(media_client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(media_client, "alice")
    cases = [
        await upload(media_client, token, png(), "image/jpeg"),  # a PNG declared as JPEG
        await upload(media_client, token, b"\xff\xd8\xff" + b"not really" * 20, "image/jpeg"),
        await upload(media_client, token, jpeg_with_gps(), "image/jpeg", declared_size=100),
    ]
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
