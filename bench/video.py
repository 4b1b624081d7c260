"""Video processing: wall time and the sandbox child's peak memory (ru_maxrss) for a generated
10 s 1280x720 30 fps clip with stereo AAC/Opus, on the remux path (H.264/AAC MP4 in) and the
transcode path (VP9/Opus WebM in), with the default VIDEO_* limits. The clips are made by PyAV
first (not timed); the figure is one run of `storage/videos.py` in the sandbox, as a worker runs
it (without the object-store copies around it)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from settings import Settings
from storage import videos
from storage.media import video_child_args, video_limits
from storage.sandbox import Sandbox
from tests.videos import clip

SECONDS, WIDTH, HEIGHT, FPS = 10, 1280, 720, 30


async def run() -> None:
    limits = video_limits(Settings.from_env({"APP_ENV": "development"}))
    sandbox = Sandbox(limits.process)
    inputs = {
        "remux (H.264/AAC MP4 in)": ("mp4", "libx264", "aac", {"preset": "veryfast"}),
        "transcode (VP9/Opus WebM in)": ("webm", "libvpx-vp9", "libopus", {}),
    }
    for name, (container, video_codec, audio_codec, options) in inputs.items():
        data = clip(
            container=container,
            video_codec=video_codec,
            audio_codec=audio_codec,
            width=WIDTH,
            height=HEIGHT,
            seconds=SECONDS,
            fps=FPS,
            video_options=options,
        )
        with tempfile.TemporaryDirectory() as folder:
            source, out = Path(folder) / "upload", Path(folder) / "out"
            source.write_bytes(data)
            out.mkdir()
            args = video_child_args(source, out, limits, len(data))
            started = time.perf_counter()
            result, _ = await sandbox.run(videos.__file__, args)
            elapsed = time.perf_counter() - started
            produced = (out / videos.VIDEO_FILE).stat().st_size
        print(
            f"{name}: {SECONDS} s {WIDTH}x{HEIGHT} {FPS} fps, {len(data) / 1e6:.1f} MB in -> "
            f"{produced / 1e6:.1f} MB out ({result['path']}): {elapsed:.2f} s, "
            f"peak RSS {result['maxrss_kib'] / 1024:.0f} MiB"
        )
