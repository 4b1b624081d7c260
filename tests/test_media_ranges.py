"""The local backend's /media: one byte range at most (anything else is ignored: 200 with the
whole file, as RFC 9110 allows), never multipart/byteranges, and nosniff on every answer."""

from __future__ import annotations

from pathlib import Path

import httpx

from settings import Settings
from tests.servers import serve_api
from web.media_files import single_range


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
