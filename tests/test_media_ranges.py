"""The local backend's /media: one byte range at most (anything else is ignored: 200 with the
whole file, as RFC 9110 allows), never multipart/byteranges, nosniff on every answer, and a
file deleted while it is served still sent whole (it is opened before its headers go out)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.exceptions import HTTPException
from starlette.types import Message, Scope

from settings import Settings
from tests.servers import serve_api
from web.held_files import HeldFiles
from web.media_files import MediaFiles, single_range


def test_only_one_well_formed_range_is_honoured() -> None:
    for good in (b"bytes=0-5", b"bytes=5-", b"bytes=-5", b"bytes=3-3", b" bytes=0-0 "):
        assert single_range(good), good
    for bad in (
        b"bytes=abc",
        b"bytes=",
        b"items=0-5",
        b"bytes=10-5",
        b"bytes=0-1,3-4",
        b"bytes=-0",
    ):
        assert not single_range(bad), bad


async def test_media_ranges_and_nosniff(settings: Settings) -> None:
    body = bytes(range(256)) * 40
    public = Path(settings.media_local_dir) / "public"
    public.mkdir(parents=True, exist_ok=True)
    (public / "clip.mp4").write_bytes(body)
    with serve_api(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def get(range_header: str | None) -> httpx.Response:
                headers = {"Range": range_header} if range_header else {}
                return await client.get("/media/public/clip.mp4", headers=headers)

            for ignored in (None, "bytes=abc", "bytes=", "items=0-5", "bytes=10-5"):
                whole = await get(ignored)
                assert (whole.status_code, whole.content) == (200, body), ignored
                assert whole.headers["x-content-type-options"] == "nosniff"
            many = ",".join(f"{n * 10}-{n * 10}" for n in range(100))
            whole = await get(f"bytes={many}")
            assert whole.status_code == 200 and whole.content == body
            assert "multipart" not in whole.headers["content-type"]
            part = await get("bytes=100-199")
            assert (part.status_code, part.content) == (206, body[100:200])
            assert part.headers["x-content-type-options"] == "nosniff"
            assert (await get(f"bytes={len(body)}-")).status_code == 416
            missing = await client.get("/media/public/nothing.mp4")
            assert missing.status_code == 404
            assert missing.headers["x-content-type-options"] == "nosniff"


async def test_a_file_deleted_while_it_is_fetched_is_sent_whole(settings: Settings) -> None:
    """A file is opened before its headers go out: deleted once they have arrived (its tweet
    deleted while the video downloads), it still comes whole, the file or the range asked
    for; asked again, it is a 404. The ETag names the file: with it, a 304."""
    body = bytes(range(256)) * 16384  # 4 MiB: many chunks after the headers
    public = Path(settings.media_local_dir) / "public"
    public.mkdir(parents=True, exist_ok=True)
    path = public / "clip.mp4"
    with serve_api(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for range_header, status, expected in (
                (None, 200, body),
                ("bytes=1000-", 206, body[1000:]),
            ):
                path.write_bytes(body)
                headers = {"Range": range_header} if range_header else {}
                async with client.stream(
                    "GET", "/media/public/clip.mp4", headers=headers
                ) as response:
                    assert response.status_code == status
                    path.unlink()
                    assert await response.aread() == expected
                gone = await client.get("/media/public/clip.mp4")
                assert gone.status_code == 404
                assert gone.headers["x-content-type-options"] == "nosniff"
            path.write_bytes(body)
            etag = (await client.head("/media/public/clip.mp4")).headers["etag"]
            again = await client.get("/media/public/clip.mp4", headers={"If-None-Match": etag})
            assert (again.status_code, again.content) == (304, b"")


def _request(path: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_the_file_is_open_before_its_headers_are_sent(tmp_path: Path) -> None:
    """In process, to place the delete exactly where a server would race it: the file is
    unlinked as the app sends its headers (`http.response.start`, before which Starlette's
    own FileResponse had not opened it). The body still arrives whole, in chunks of at most
    64 KiB: never read whole into memory."""
    body = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "clip.mp4"
    path.write_bytes(body)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            path.unlink()
        sent.append(message)

    await MediaFiles(HeldFiles(directory=tmp_path))(_request("/clip.mp4"), _no_body, send)
    start, *chunks = sent
    assert start["status"] == 200 and not path.exists()
    assert b"".join(chunk["body"] for chunk in chunks) == body
    assert len(chunks) > 1 and max(len(chunk["body"]) for chunk in chunks) <= 64 * 1024


async def test_a_file_gone_before_it_is_opened_is_a_404(tmp_path: Path) -> None:
    """Deleted between StaticFiles' look-up and the open: 404, nothing sent."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x" * 100)
    files = HeldFiles(directory=tmp_path)
    scope = _request("/clip.mp4")
    response = files.file_response(str(path), path.stat(), scope)
    path.unlink()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(HTTPException) as caught:
        await response(scope, _no_body, send)
    assert caught.value.status_code == 404 and sent == []
