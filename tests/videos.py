"""Video files made on the fly with PyAV for the video tests and the benchmark (no binary
fixtures): H.264/AAC MP4 (optionally with a GPS `location` tag or a display rotation, as a
phone writes for a portrait clip), VP9/Opus WebM, and a WebM whose track header claims
dimensions its frames do not have."""

from __future__ import annotations

import math
import struct
import tempfile
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageChops, ImageStat

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
    rotation: int = 0,
) -> bytes:
    """An encoded clip: moving gradient frames (`picture`) and a sine tone (if `audio_codec`);
    with `rotation`, a display matrix turning its frames that many degrees counterclockwise
    (a phone's portrait clip: landscape frames and -90)."""
    options = {"movflags": "+faststart"} if faststart else {}
    with tempfile.TemporaryDirectory() as folder:  # faststart rewrites the file: not in memory
        path = Path(folder) / f"clip.{container}"
        _encode(path, container, options, video_codec, audio_codec, width, height, seconds, fps,
                pix_fmt, metadata or {}, video_options or {}, rotation)  # fmt: skip
        return path.read_bytes()


def picture(width: int, height: int, index: int) -> Image.Image:
    """Frame `index` of a clip: a gradient from black (top) to white (bottom) with a coloured
    band down its left quarter; only the band's red changes from frame to frame, so the green
    channel is the same in every frame and shows which way up a picture is."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image.paste((index * 16 % 256, 40, 200), (0, 0, max(1, width // 4), height))
    return image


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
    rotation: int,
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
        if rotation:
            video.set_display_rotation(rotation)
        audio: av.AudioStream | None = None
        if audio_codec:
            added = output.add_stream(audio_codec, rate=48000)
            assert isinstance(added, av.AudioStream)
            added.layout = "stereo"
            audio = added
        frames = max(1, round(seconds * fps))
        for index in range(frames):
            frame = av.VideoFrame.from_image(picture(width, height, index))
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


def looks_like(image: Image.Image, reference: Image.Image) -> bool:
    """The same `picture` the same way up, give or take compression: the green channels (the
    same in every frame of a clip) differ by under 12 of 255 on average (the same picture
    measures about 1; turned half round, over 100)."""
    green = image.convert("RGB").getchannel("G"), reference.convert("RGB").getchannel("G")
    return (
        green[0].size == green[1].size
        and ImageStat.Stat(ImageChops.difference(*green)).mean[0] < 12
    )


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


# Files whose headers lie, for the limits that must hold on what is really demuxed and decoded
# (ported from the attack pass's reproductions).

_MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}


def _mp4_boxes(data: bytes | bytearray, offset: int, end: int, found: list) -> list:
    """(type, start of its payload) of every box, descending into the containers above."""
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[offset + 8 : offset + 16])[0], 16
        size = size or end - offset
        found.append((kind, offset + header))
        if kind in _MP4_CONTAINERS:
            _mp4_boxes(data, offset + header, offset + size, found)
        offset += size
    return found


def mp4_claiming_seconds(data: bytes, seconds: float) -> bytes:
    """The MP4 with every duration in its header (mvhd, tkhd, mdhd, elst; version 0 boxes)
    set to `seconds`; the samples are untouched."""
    patched = bytearray(data)
    boxes = _mp4_boxes(patched, 0, len(patched), [])
    [movie_scale] = [
        struct.unpack(">I", patched[b + 12 : b + 16])[0] for k, b in boxes if k == b"mvhd"
    ]
    for kind, body in boxes:
        assert kind not in (b"mvhd", b"tkhd", b"mdhd") or patched[body] == 0, "version 0 only"
        if kind == b"mvhd":
            struct.pack_into(">I", patched, body + 16, int(seconds * movie_scale))
        elif kind == b"tkhd":
            struct.pack_into(">I", patched, body + 20, int(seconds * movie_scale))
        elif kind == b"mdhd":
            scale = struct.unpack(">I", patched[body + 12 : body + 16])[0]
            struct.pack_into(">I", patched, body + 16, int(seconds * scale))
        elif kind == b"elst":
            for entry in range(struct.unpack(">I", patched[body + 4 : body + 8])[0]):
                struct.pack_into(">I", patched, body + 8 + 12 * entry, int(seconds * movie_scale))
    return bytes(patched)


def mkv_claiming_seconds(data: bytes, seconds: float) -> bytes:
    """The Matroska file with its Segment Info Duration (an 8-byte float, in ms at the default
    timecode scale) set to `seconds`."""
    at = data.index(b"\x44\x89\x88") + 3
    return data[:at] + struct.pack(">d", seconds * 1000) + data[at + 8 :]


def _h264(path: Path, width: int, height: int, frames: int, fps: int) -> None:
    with av.open(str(path), "w", format="mp4") as output:
        video = output.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast"}
        for index in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([index * 37 % 256]) * plane.buffer_size)
            frame.pts = index
            for packet in video.encode(frame):
                output.mux(packet)
        for packet in video.encode(None):
            output.mux(packet)


def _avcc_nal_units(extradata: bytes) -> list[bytes]:
    units, offset = [], 6
    for count_mask in (0x1F, 0xFF):
        count = extradata[offset - 1] & count_mask
        for _ in range(count):
            length = struct.unpack(">H", extradata[offset : offset + 2])[0]
            units.append(extradata[offset + 2 : offset + 2 + length])
            offset += 2 + length
        offset += 1
    return units


def resolution_switch(
    *,
    small: tuple[int, int] = (16, 16),
    large: tuple[int, int] = (48, 48),
    small_frames: int = 20,
    large_frames: int = 5,
    fps: int = 10,
    container: str = "mp4",
) -> bytes:
    """H.264 whose header (avcC) says `small`, whose packets switch to `large` after
    `small_frames`: the large stream's SPS and PPS travel in-band, before its first frame."""
    with tempfile.TemporaryDirectory() as folder:
        first, second = Path(folder) / "a.mp4", Path(folder) / "b.mp4"
        _h264(first, *small, small_frames, fps)
        _h264(second, *large, large_frames, fps)
        target = Path(folder) / f"out.{container}"
        with av.open(str(first)) as a, av.open(str(second)) as b:
            head, tail = a.streams.video[0], b.streams.video[0]
            assert head.time_base is not None and tail.time_base is not None
            units = _avcc_nal_units(bytes(tail.codec_context.extradata or b""))
            prefix = b"".join(struct.pack(">I", len(unit)) + unit for unit in units)
            with av.open(str(target), "w", format=container) as output:
                stream = output.add_stream_from_template(head)
                for packet in a.demux(head):
                    if packet.dts is not None:
                        packet.stream = stream
                        output.mux(packet)
                shift = round(small_frames / fps / head.time_base)
                for packet in b.demux(tail):
                    if packet.dts is None or packet.pts is None:
                        continue
                    moved = av.Packet(prefix + bytes(packet) if prefix else bytes(packet))
                    prefix = b""
                    ratio = tail.time_base / head.time_base
                    moved.pts = round(packet.pts * ratio) + shift
                    moved.dts = round(packet.dts * ratio) + shift
                    moved.is_keyframe = packet.is_keyframe
                    moved.time_base, moved.stream = head.time_base, stream
                    output.mux(moved)
        return target.read_bytes()


def burst_clip(*, burst: int = 40, then_seconds: int = 10, size: int = 16) -> bytes:
    """Variable frame rate: `burst` frames within the first second, then one a second for
    `then_seconds` s. Its average rate is low; its rate in the first second is `burst` fps."""
    stamps = [index * 1000 // burst for index in range(burst)]
    stamps += [1000 * second for second in range(1, then_seconds + 1)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "burst.mp4"
        with av.open(str(path), "w", format="mp4") as output:
            video = output.add_stream("libx264", rate=30)
            video.width, video.height, video.pix_fmt = size, size, "yuv420p"
            video.codec_context.time_base = Fraction(1, 1000)
            video.options = {"preset": "ultrafast"}
            for index, stamp in enumerate(stamps):
                frame = av.VideoFrame(size, size, "yuv420p")
                for plane in frame.planes:
                    plane.update(bytes([index * 7 % 256]) * plane.buffer_size)
                frame.pts, frame.time_base = stamp, Fraction(1, 1000)
                for packet in video.encode(frame):
                    output.mux(packet)
            for packet in video.encode(None):
                output.mux(packet)
        return path.read_bytes()
