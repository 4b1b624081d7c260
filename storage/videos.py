"""What an uploaded video really is, and a clean, web-playable copy of it with a poster.

A presigned PUT lets the client send any bytes. In order: the magic bytes pick the demuxer (the
declared type is not trusted), the container's headers are probed (codecs, duration,
dimensions, frame rate) and anything outside the limits is refused before a frame is decoded;
then the streams are copied into a new MP4 (remux, when the input is already H.264 4:2:0 with
AAC or no audio) or decoded and encoded again as H.264/AAC (transcode). Either way nothing of the
input's metadata is copied (no `udta`/location atoms, no creation dates, no encoder tags: the
muxer runs `bitexact`), and the index (`moov`) is written at the front (`faststart`) so a
browser can start playing and seek before the whole file arrived. The poster is a JPEG of a
frame a little into the result.

Decoding hostile files is dangerous, so this runs only as a child process of
`storage/sandbox.py` (`main`), which caps its memory, CPU time and output size first. It
imports only PyAV and Pillow (the child runs with `python -I`).
"""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

CONTENT_TYPES = ("video/mp4", "video/quicktime", "video/webm")
OUTPUT_TYPE = "video/mp4"
VIDEO_FILE = "video.mp4"
POSTER_FILE = "poster.jpg"
POSTER_AT_SECONDS = 1.0  # the poster's frame: this far in, or a quarter in for shorter clips
REMUXABLE_VIDEO = {"h264"}
REMUXABLE_AUDIO = {"aac"}
PLAYABLE_PIXEL_FORMATS = {"yuv420p", "yuvj420p"}
AUDIO_RATE = 48_000
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "profile": "high"}
CODEC_THREADS = 2  # per codec: bounds the threads' stacks inside RLIMIT_AS


class InvalidVideo(ValueError):
    """The bytes are not a usable video within the limits; the message is the reason."""


@dataclass(frozen=True)
class VideoLimits:
    max_width: int  # the longer side
    max_height: int  # the shorter side
    max_seconds: float
    max_fps: float


@dataclass(frozen=True)
class Probe:
    demuxer: str
    video_codec: str
    pixel_format: str
    audio_codec: str | None
    width: int
    height: int
    seconds: float
    fps: float


def sniff(head: bytes) -> str | None:
    """The demuxer the magic bytes call for: ISO BMFF/QuickTime or Matroska/WebM, or None."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    return None


def probe(container: av.container.InputContainer, demuxer: str, limits: VideoLimits) -> Probe:
    """Read the headers and refuse anything outside the limits; decodes nothing itself."""
    if not container.streams.video:
        raise InvalidVideo("has no video stream")
    video = container.streams.video[0]
    context = video.codec_context
    width, height = context.width, context.height
    longer, shorter = max(width, height), min(width, height)
    if shorter <= 0 or longer > limits.max_width or shorter > limits.max_height:
        raise InvalidVideo(
            f"has dimensions {width}x{height}, missing or outside "
            f"{limits.max_width}x{limits.max_height}"
        )
    rate = video.average_rate or video.guessed_rate or video.base_rate
    fps = float(rate) if rate else 0.0
    if not 0 < fps <= limits.max_fps:
        raise InvalidVideo(f"has a frame rate of {fps:.3g} fps, outside 0-{limits.max_fps:g}")
    seconds = _duration(container, video)
    if not 0 < seconds <= limits.max_seconds:
        raise InvalidVideo(f"lasts {seconds:.3g} s, outside 0-{limits.max_seconds:g} s")
    audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    pixel_format = context.format.name if context.format is not None else ""
    return Probe(demuxer, context.name, pixel_format, audio, width, height, seconds, fps)


def _duration(container: av.container.InputContainer, video: av.VideoStream) -> float:
    if video.duration is not None and video.time_base is not None and video.duration > 0:
        return float(video.duration * video.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return 0.0


def remuxable(found: Probe) -> bool:
    return (
        found.demuxer == "mov"
        and found.video_codec in REMUXABLE_VIDEO
        and found.pixel_format in PLAYABLE_PIXEL_FORMATS
        and (found.audio_codec is None or found.audio_codec in REMUXABLE_AUDIO)
    )


def _open_output(path: Path) -> av.container.OutputContainer:
    # faststart: the index first; bitexact: no encoder tag, no creation time.
    options = {"movflags": "+faststart", "fflags": "+bitexact"}
    output = av.open(str(path), "w", format="mp4", options=options)
    output.metadata.clear()
    return output


def remux(source: av.container.InputContainer, target: Path, found: Probe) -> None:
    """Copy the H.264/AAC packets into a new MP4, refusing a file that ends early."""
    streams = [source.streams.video[0], *source.streams.audio[:1]]
    with _open_output(target) as output:
        mapping = {s.index: output.add_stream_from_template(s) for s in streams}
        for stream in mapping.values():
            stream.metadata.clear()
        last = 0.0
        for packet in source.demux(streams):
            if packet.dts is None:
                continue
            if packet.stream.type == "video" and packet.pts is not None and packet.time_base:
                last = max(last, float(packet.pts * packet.time_base))
            packet.stream = mapping[packet.stream.index]
            output.mux(packet)
    if last + 2 / found.fps < found.seconds * 0.9:
        raise InvalidVideo(
            f"is truncated: its frames stop at {last:.2f} s of {found.seconds:.2f} s"
        )


def transcode(source: av.container.InputContainer, target: Path, found: Probe) -> None:
    """Decode every frame and encode H.264 (4:2:0, even dimensions) and AAC."""
    in_video = source.streams.video[0]
    in_audio = source.streams.audio[0] if source.streams.audio else None
    for stream in (in_video, in_audio):
        if stream is not None:
            stream.codec_context.thread_count = CODEC_THREADS
    width, height = found.width - found.width % 2, found.height - found.height % 2
    fps = Fraction(found.fps).limit_denominator(1001)
    with _open_output(target) as output:
        video = output.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = dict(X264_OPTIONS)
        video.codec_context.thread_count = CODEC_THREADS
        audio = None
        if in_audio is not None:
            audio = output.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "stereo"
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        decoded = 0
        streams = [s for s in (in_video, in_audio) if s is not None]
        for frame in source.decode(*streams):
            if isinstance(frame, av.VideoFrame):
                decoded += 1
                picture = frame.reformat(width=width, height=height, format="yuv420p")
                picture.pts, picture.time_base = frame.pts, frame.time_base
                for packet in video.encode(picture):
                    output.mux(packet)
            elif audio is not None and isinstance(frame, av.AudioFrame):
                for chunk in resampler.resample(frame):
                    for packet in audio.encode(chunk):
                        output.mux(packet)
        if decoded == 0:
            raise InvalidVideo("has no decodable frame")
        for packet in video.encode(None):
            output.mux(packet)
        if audio is not None:
            for chunk in resampler.resample(None):
                for packet in audio.encode(chunk):
                    output.mux(packet)
            for packet in audio.encode(None):
                output.mux(packet)
    if decoded < found.seconds * found.fps * 0.9 - 2:
        raise InvalidVideo(
            f"is truncated: {decoded} frames of about {found.seconds * found.fps:.0f}"
        )


def poster(clean: Path, target: Path, seconds: float) -> tuple[int, int]:
    """A JPEG of the first frame at or past POSTER_AT_SECONDS (a quarter in, if shorter)."""
    at = min(POSTER_AT_SECONDS, seconds / 4)
    chosen = None
    with av.open(str(clean)) as result:
        stream = result.streams.video[0]
        stream.codec_context.thread_count = CODEC_THREADS
        for frame in result.decode(stream):
            chosen = frame
            if frame.time is not None and frame.time >= at:
                break
    if chosen is None:
        raise InvalidVideo("has no decodable frame")
    image = chosen.to_image()
    image.save(target, "JPEG", quality=85)
    return image.width, image.height


def clean_copy(source_path: Path, out_dir: Path, limits: VideoLimits) -> dict[str, object]:
    """Verify the file and write VIDEO_FILE and POSTER_FILE into `out_dir`. Run it only inside
    the sandbox (see the module docstring). Returns what the header reports."""
    with source_path.open("rb") as file:
        demuxer = sniff(file.read(16))
    if demuxer is None:
        raise InvalidVideo("is not an MP4, QuickTime or WebM file")
    clean = out_dir / VIDEO_FILE
    try:
        with av.open(str(source_path), format=demuxer) as source:
            found = probe(source, demuxer, limits)
            path = "remux" if remuxable(found) else "transcode"
            (remux if path == "remux" else transcode)(source, clean, found)
        width, height = poster(clean, out_dir / POSTER_FILE, found.seconds)
        with av.open(str(clean)) as result:
            seconds = _duration(result, result.streams.video[0])
    except InvalidVideo:
        raise
    except (av.FFmpegError, ValueError, OSError, StopIteration) as exc:
        raise InvalidVideo(f"cannot be read as a video: {exc}") from None
    return {
        "width": width,
        "height": height,
        "duration_ms": round(seconds * 1000),
        "path": path,
        "source": {"container": demuxer, "video": found.video_codec, "audio": found.audio_codec},
    }


def limit_self(memory_bytes: int, cpu_seconds: int, file_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))


def main(argv: list[str]) -> None:
    """Child entry (`storage.sandbox`): argv = memory bytes, CPU seconds, input path, output
    folder, max width, max height, max seconds, max fps, max output bytes. Writes one JSON line
    (the result, with `maxrss_kib`, or {"error": reason}). The limits are set before the file
    is opened."""
    memory, cpu, source, out_dir, width, height, seconds, fps, max_output = argv
    limit_self(int(memory), int(cpu), int(max_output))
    av.logging.set_level(av.logging.PANIC)  # reasons go in the answer, not on stderr
    limits = VideoLimits(int(width), int(height), float(seconds), float(fps))
    header: dict[str, object]
    try:
        header = clean_copy(Path(source), Path(out_dir), limits)
    except InvalidVideo as exc:
        header = {"error": f"{exc}"}
    except MemoryError:
        header = {"error": "decoding it needs more memory than allowed"}
    header["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(json.dumps(header) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
