"""storage/videos.py's limits on what a file really holds, in this process (the sandbox's child
runs the same `clean_copy`): a header can lie about the duration and the frame rate, and an
H.264 stream can change its dimensions after its header. Tiny clips (16x16), tight limits."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import av
import pytest

from storage import videos
from storage.media import VideoLimits as MediaVideoLimits
from storage.media import video_child_args
from storage.sandbox import ChildLimits, Sandbox, SandboxRefused
from storage.videos import InvalidVideo, VideoLimits, clean_copy
from tests.videos import (
    burst_clip,
    clip,
    mkv_claiming_seconds,
    mp4_claiming_seconds,
    resolution_switch,
)

LIMITS = VideoLimits(max_width=32, max_height=32, max_seconds=2.0, max_fps=10.0)


def run(tmp_path: Path, data: bytes, limits: VideoLimits = LIMITS) -> dict[str, object]:
    source = tmp_path / "upload"
    source.write_bytes(data)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return clean_copy(source, out, limits)


def refused(tmp_path: Path, data: bytes, limits: VideoLimits = LIMITS) -> str:
    with pytest.raises(InvalidVideo) as caught:
        run(tmp_path, data, limits)
    return str(caught.value)


def seconds_in(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        return float(video.duration * video.time_base)


def test_a_clip_within_the_limits_is_remuxed_and_a_webm_transcoded(tmp_path: Path) -> None:
    done = run(tmp_path, clip(width=16, height=16, seconds=2, fps=10))
    assert (done["path"], done["width"], done["height"]) == ("remux", 16, 16)
    assert 1900 <= int(done["duration_ms"]) <= 2100  # type: ignore[call-overload]
    webm = clip(container="matroska", width=16, height=16, seconds=1, fps=10, audio_codec=None)
    assert run(tmp_path, webm)["path"] == "transcode"


def test_repeated_in_band_headers_equal_to_the_header_still_remux(tmp_path: Path) -> None:
    data = clip(width=16, height=16, seconds=1, video_options={"x264-params": "repeat-headers=1"})
    assert run(tmp_path, data)["path"] == "remux"


@pytest.mark.parametrize("audio", [None, "aac"])
def test_an_mp4_whose_header_lies_about_its_duration_is_refused(
    tmp_path: Path, audio: str | None
) -> None:
    """6 s of frames, every duration in the header patched to 1 s (the limit is 2 s): the
    remux counts the packets' timestamps and stops past the limit."""
    data = mp4_claiming_seconds(clip(width=16, height=16, seconds=6, fps=5, audio_codec=audio), 1)
    assert seconds_in(data) == pytest.approx(1, abs=0.1)  # the header does lie
    assert "lasts more than 2 s" in refused(tmp_path, data)


def test_a_matroska_file_whose_header_lies_about_its_duration_is_refused(tmp_path: Path) -> None:
    """The same in Matroska (transcoded: decoded and encoded again)."""
    long = clip(container="matroska", width=16, height=16, seconds=6, fps=5, audio_codec=None)
    data = mkv_claiming_seconds(long, 1)
    with av.open(io.BytesIO(data)) as container:
        assert container.duration / av.time_base == pytest.approx(1, abs=0.1)
    assert "lasts more than 2 s" in refused(tmp_path, data)


@pytest.mark.parametrize("container", ["mp4", "matroska"])
def test_a_stream_that_grows_past_the_limits_mid_stream_is_refused(
    tmp_path: Path, container: str
) -> None:
    """Its header (avcC) says 16x16; after 20 frames an in-band SPS switches to 48x48 (the
    limit is 32x32). MP4 would be remuxed: the foreign SPS sends it to the transcode, which
    refuses the first oversized frame; Matroska is transcoded anyway."""
    data = resolution_switch(container=container)
    with av.open(io.BytesIO(data)) as probe:
        assert (probe.streams.video[0].width, probe.streams.video[0].height) == (16, 16)
    reason = refused(tmp_path, data, VideoLimits(32, 32, max_seconds=10.0, max_fps=10.0))
    assert "changes its dimensions to 48x48 mid-stream" in reason, reason


def test_a_switch_within_the_limits_is_transcoded_at_the_header_size(tmp_path: Path) -> None:
    data = resolution_switch(large=(24, 24))
    done = run(tmp_path, data, VideoLimits(32, 32, max_seconds=10.0, max_fps=10.0))
    assert (done["path"], done["width"], done["height"]) == ("transcode", 16, 16)


def test_the_size_limits_hold_for_either_orientation(tmp_path: Path) -> None:
    """The limits bound the longer and the shorter side (here 32 and 24): a portrait clip
    fits, coded upright or coded landscape with a quarter turn (reported as displayed, 24x32);
    a rotation does not let a frame past them either way."""
    limits = VideoLimits(32, 24, max_seconds=2.0, max_fps=10.0)
    portrait = clip(width=24, height=32, seconds=1, audio_codec=None)
    turned = clip(width=32, height=24, seconds=1, audio_codec=None, rotation=90)
    for data in (portrait, turned):
        done = run(tmp_path, data, limits)
        assert (done["width"], done["height"]) == (24, 32), done
    assert run(tmp_path, turned, limits)["rotation"] == 90
    for width, height in ((24, 40), (40, 24), (32, 32)):
        data = clip(width=width, height=height, seconds=1, audio_codec=None, rotation=90)
        assert f"{width}x{height}" in refused(tmp_path, data, limits), (width, height)


def test_a_burst_of_frames_above_the_rate_limit_is_refused(tmp_path: Path) -> None:
    """40 frames in the first second, then 1 a second for 10 s: about 4.5 fps on average
    (the header's rate passes the 10 fps limit), 40 fps in the first second."""
    limits = VideoLimits(32, 32, max_seconds=20.0, max_fps=10.0)
    reason = refused(tmp_path, burst_clip(burst=40, then_seconds=10), limits)
    assert "more than 10 frames within one second" in reason, reason
    assert run(tmp_path, burst_clip(burst=10, then_seconds=3), limits)["path"] == "remux"


async def test_a_refusal_reason_is_fixed_text_and_the_details_are_only_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the sandbox, as the worker runs it: the reason a client reads names no path,
    errno or decoder message; the server's log has them."""
    source = tmp_path / "upload"
    source.write_bytes(clip(width=16, height=16, seconds=1)[:200])  # cut inside its header
    out = tmp_path / "out"
    out.mkdir()
    limits = ChildLimits(2048 * 1024 * 1024, 30, 60.0, 1)
    video = MediaVideoLimits(
        max_bytes=10**6, max_seconds=2.0, max_width=32, max_height=32, max_fps=10.0,
        max_pending_bytes=10**6, multipart_threshold_bytes=10**6, part_bytes=10**6,
        process=limits, max_attempts=1, lease_seconds=1.0,
    )  # fmt: skip
    caplog.set_level(logging.INFO, logger="storage.sandbox")
    with pytest.raises(SandboxRefused) as refused:
        await Sandbox(limits).run(videos.__file__, video_child_args(source, out, video, 200))
    assert str(refused.value) == "cannot be read as a video"
    assert str(source) in caplog.text and "Invalid data" in caplog.text
