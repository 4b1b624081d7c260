"""Video files made on the fly with PyAV for the video tests and the benchmark (no binary
fixtures): H.264/AAC MP4 (optionally with a GPS `location` tag), VP9/Opus WebM, and a WebM
whose track header claims dimensions its frames do not have."""

from __future__ import annotations

import math
import struct
import tempfile
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

LOCATION = "+52.5200+013.4050/"  # what a phone writes into ©xyz


def clip(
    *,
    container: str = "mp4",
    video_codec: str = "libx264",
    audio_codec: str | None = "aac",
    width: int = 64,
    height: int = 48,
    seconds: float = 1.0,
    fps: int = 10,
    pix_fmt: str = "yuv420p",
    metadata: dict[str, str] | None = None,
    faststart: bool = False,
    video_options: dict[str, str] | None = None,
) -> bytes:
    """An encoded clip: moving gradient frames and a sine tone (if `audio_codec`)."""
    options = {"movflags": "+faststart"} if faststart else {}
    with tempfile.TemporaryDirectory() as folder:  # faststart rewrites the file: not in memory
        path = Path(folder) / f"clip.{container}"
        _encode(path, container, options, video_codec, audio_codec, width, height, seconds, fps,
                pix_fmt, metadata or {}, video_options or {})  # fmt: skip
        return path.read_bytes()


def _encode(
    path: Path,
    container: str,
    options: dict[str, str],
    video_codec: str,
    audio_codec: str | None,
    width: int,
    height: int,
    seconds: float,
    fps: int,
    pix_fmt: str,
    metadata: dict[str, str],
    video_options: dict[str, str],
) -> None:
    with av.open(str(path), "w", format=container, options=options) as output:
        for key, value in metadata.items():
            output.metadata[key] = value
        video = output.add_stream(video_codec, rate=fps)
        assert isinstance(video, av.VideoStream)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        defaults = {"preset": "ultrafast"} if video_codec == "libx264" else {}
        if video_codec == "libvpx-vp9":
            defaults = {"deadline": "realtime", "cpu-used": "8"}
        video.options = {**defaults, **video_options}
        audio: av.AudioStream | None = None
        if audio_codec:
            added = output.add_stream(audio_codec, rate=48000)
            assert isinstance(added, av.AudioStream)
            added.layout = "stereo"
            audio = added
        frames = max(1, round(seconds * fps))
        for index in range(frames):
            image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
            image.paste((index * 16 % 256, 40, 200), (0, 0, max(1, width // 4), height))
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame.reformat(format=pix_fmt)):
                output.mux(packet)
        for packet in video.encode(None):
            output.mux(packet)
        if audio is not None:
            samples, step = int(seconds * 48000), 1024
            for start in range(0, samples, step):
                count = min(step, samples - start)
                tone = [
                    0.2 * math.sin((start + i) * 2 * math.pi * 440 / 48000) for i in range(count)
                ]
                plane = struct.pack(f"<{count}f", *tone)
                frame = av.AudioFrame(format="fltp", layout="stereo", samples=count)
                for target in frame.planes:
                    target.update(plane + bytes(target.buffer_size - len(plane)))
                frame.sample_rate = 48000
                frame.pts = start
                frame.time_base = Fraction(1, 48000)
                for packet in audio.encode(frame):
                    output.mux(packet)
            for packet in audio.encode(None):
                output.mux(packet)


def h264_with_location(**options: object) -> bytes:
    return clip(metadata={"location": LOCATION, "title": "Holiday"}, **options)  # type: ignore[arg-type]


def vp9_webm(**options: object) -> bytes:
    return clip(container="webm", video_codec="libvpx-vp9", audio_codec="libopus", **options)  # type: ignore[arg-type]


def top_level_atoms(data: bytes) -> list[str]:
    """The MP4 box types at the top level, in file order."""
    atoms, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        atoms.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return atoms


def _ebml(element_id: int, payload: bytes) -> bytes:
    """One EBML element: its id bytes, an 8-byte size, the payload."""
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    return id_bytes + (0x01 << 56 | len(payload)).to_bytes(8, "big") + payload


def _uint(element_id: int, value: int) -> bytes:
    return _ebml(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def webm_claiming(width: int, height: int) -> bytes:
    """A WebM whose track header says `width` x `height` (10 fps), followed by one block of
    junk where the frame should be: what a hostile file that wants a giant frame buffer
    looks like. Built element by element (EBML), a few hundred bytes."""
    header = _ebml(0x1A45DFA3, _ebml(0x4282, b"webm") + _uint(0x4287, 4) + _uint(0x4285, 2))
    info = _ebml(0x1549A966, _uint(0x2AD7B1, 1_000_000) + _ebml(0x4D80, b"x") + _ebml(0x5741, b"x"))
    video = _ebml(0xE0, _uint(0xB0, width) + _uint(0xBA, height))
    frame_ns = _uint(0x23E383, 100_000_000)  # DefaultDuration: 10 fps
    track = _ebml(
        0xAE,
        _uint(0xD7, 1)
        + _uint(0x73C5, 1)
        + _uint(0x83, 1)
        + _ebml(0x86, b"V_VP9")
        + frame_ns
        + video,
    )
    block = b"\x81" + struct.pack(">h", 0) + b"\x80" + bytes(range(256)) * 4  # track 1, t=0, key
    cluster = _ebml(0x1F43B675, _uint(0xE7, 0) + _ebml(0xA3, block))
    return header + _ebml(0x18538067, info + _ebml(0x1654AE6B, track) + cluster)
