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

A phone stores a portrait clip as landscape frames plus a display matrix (a rotation). The clean
copy carries that rotation as a quarter turn (`display_rotation`), its poster is turned upright
by it, and the width and height reported are the poster's: the video as a browser shows it.

Decoding hostile files is dangerous, so this runs only as a child process of
`storage/sandbox.py` (`main`), which caps its memory, CPU time and output size first. It
imports only PyAV and Pillow (the child runs with `python -I`).
"""

from __future__ import annotations

import json
import resource
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

CONTENT_TYPES = ("video/mp4", "video/quicktime", "video/webm")
OUTPUT_TYPE = "video/mp4"
VIDEO_FILE = "video.mp4"
POSTER_FILE = "poster.jpg"
POSTER_AT_SECONDS = 1.0  # the poster's frame: this far in, or a quarter in for shorter clips
REMUXABLE_VIDEO = {"h264"}
REMUXABLE_AUDIO = {"aac"}
PLAYABLE_PIXEL_FORMATS = {"yuv420p", "yuvj420p"}
# A display rotation (degrees counterclockwise, FFmpeg's and PyAV's sense) as the poster's turn
# (PIL's ROTATE_n also turns counterclockwise).
UPRIGHT = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}
AUDIO_RATE = 48_000
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "profile": "high"}
CODEC_THREADS = 2  # per codec: bounds the threads' stacks inside RLIMIT_AS


class InvalidVideo(ValueError):
    """The bytes are not a usable video within the limits; the message is the reason (short,
    fixed wording for the client); `detail` is what went wrong inside, for the server's log
    only (library messages carry paths, errno numbers and decoder log lines)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail


class _NeedsDecoding(Exception):
    """A remux met something it cannot check without decoding (an H.264 parameter set in a
    packet that differs from the header's, new extradata mid-stream): transcode instead."""


@dataclass(frozen=True)
class VideoLimits:
    """Bounds on what a video holds. The sizes bound the longer and the shorter side whatever
    the orientation, so a portrait clip fits as well as a landscape one (1200x1920 as well as
    1920x1200; Twitter allows 1920x1200 and 1200x1900), and a quarter turn of the display
    matrix, which swaps width and height, changes nothing: the coded frame and the displayed
    one pass or fail alike."""

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
    # avcC's sequence parameter set, when there is exactly one and the packets carry NAL units
    # with these many length bytes (a remux needs both); else None.
    sps: bytes | None = None
    nal_length_size: int = 0


# A file's real content is bounded as it is demuxed (packets) and decoded (frames), whatever its
# header said: a header can lie about the duration and the frame rate, and an H.264 stream can
# change its dimensions mid-stream.
RATE_WINDOW_SECONDS = 1.0
RATE_SLACK_FRAMES = 1  # timestamps rounded to the time base may fit one more frame in a window
# Audio priming and B-frame delays stamp the first packets a little before zero.
DURATION_SLACK_SECONDS = 0.5
AUDIO_PACKETS_PER_SECOND = 1000  # an audio packet is at least 1 ms (AAC: 21 ms, Opus: 2.5 ms)


class _Pace:
    """What one stream really holds, checked item by item (packets or frames): at most
    max_seconds x max_fps of them, none stamped more than max_seconds (+ the slack) after the
    first, and (video) at most max_fps + RATE_SLACK_FRAMES in any RATE_WINDOW_SECONDS. Raises
    InvalidVideo at the first item past a bound, so the work done on a lying file stays
    bounded."""

    def __init__(self, limits: VideoLimits, *, video: bool) -> None:
        self._max_seconds = limits.max_seconds
        rate = limits.max_fps if video else AUDIO_PACKETS_PER_SECOND
        self._max_count = int(limits.max_seconds * rate) + RATE_SLACK_FRAMES
        self._per_window = int(limits.max_fps) + RATE_SLACK_FRAMES if video else None
        self._max_fps = limits.max_fps
        self._what = "frames" if video else "audio packets"
        self._count = 0
        self._first: float | None = None
        self._window: deque[float] = deque()

    def check(self, at: float | None) -> None:
        self._count += 1
        if self._count > self._max_count:
            raise InvalidVideo(
                f"has more than {self._max_count} {self._what}: "
                f"longer than {self._max_seconds:g} s or faster than {self._max_fps:g} fps"
            )
        if at is None:
            return
        self._first = at if self._first is None else min(self._first, at)
        if at - self._first > self._max_seconds + DURATION_SLACK_SECONDS:
            raise InvalidVideo(f"lasts more than {self._max_seconds:g} s")
        if self._per_window is None:
            return
        window = self._window
        window.append(at)
        while window and at - window[0] >= RATE_WINDOW_SECONDS:
            window.popleft()
        if len(window) > self._per_window:
            raise InvalidVideo(
                f"has more than {self._max_fps:g} frames within one second "
                f"(its frame rate varies above {self._max_fps:g} fps)"
            )


def _packet_seconds(packet: av.Packet) -> float | None:
    stamp = packet.dts if packet.dts is not None else packet.pts
    if stamp is None or packet.time_base is None:
        return None
    return float(stamp * packet.time_base)


def _check_frame_size(frame: av.VideoFrame, limits: VideoLimits) -> None:
    longer, shorter = max(frame.width, frame.height), min(frame.width, frame.height)
    if longer > limits.max_width or shorter > limits.max_height:
        raise InvalidVideo(
            f"changes its dimensions to {frame.width}x{frame.height} mid-stream, outside "
            f"{limits.max_width}x{limits.max_height}"
        )


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
    sps, nal_length_size = _avcc_sps(context.extradata)
    return Probe(
        demuxer, context.name, pixel_format, audio, width, height, seconds, fps,
        sps, nal_length_size,
    )  # fmt: skip


def _avcc_sps(extradata: bytes | None) -> tuple[bytes | None, int]:
    """The one SPS of an avcC record and its NAL length size; (None, 0) if the record is not
    avcC (Annex B extradata) or has other than one SPS: several could give different frame
    sizes, and the header reports only one of them."""
    data = bytes(extradata or b"")
    if len(data) < 8 or data[0] != 1 or data[5] & 0x1F != 1:
        return None, 0
    length = int.from_bytes(data[6:8], "big")
    sps = data[8 : 8 + length]
    if len(sps) != length or not sps or sps[0] & 0x1F != 7:
        return None, 0
    return sps, (data[4] & 3) + 1


def _duration(container: av.container.InputContainer, video: av.VideoStream) -> float:
    if video.duration is not None and video.time_base is not None and video.duration > 0:
        return float(video.duration * video.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return 0.0


def display_rotation(source: av.container.InputContainer, limits: VideoLimits) -> int:
    """The quarter turn counterclockwise (0, 90, 180 or 270 degrees) that shows the video
    upright, from its display matrix (MP4 `tkhd`, Matroska's projection roll).

    PyAV 18 reads that matrix only from decoded frames (`VideoFrame.rotation`: a stream does
    not expose its side data), so this decodes the first frame, once `probe` has passed the
    headers, its packets and its size bounded as in a transcode. A matrix that turns by other
    than a quarter turn, or mirrors too, counts as its nearest quarter turn (no mirror): that
    is what the clean copy is given, so its reported size, its poster and what a browser
    shows agree."""
    video = source.streams.video[0]
    video.codec_context.thread_count = CODEC_THREADS
    for frame in _decoded(source, [video], {video.index: _Pace(limits, video=True)}):
        assert isinstance(frame, av.VideoFrame)
        _check_frame_size(frame, limits)
        return round(frame.rotation / 90) % 4 * 90
    raise InvalidVideo("has no decodable frame")


def remuxable(found: Probe) -> bool:
    return (
        found.demuxer == "mov"
        and found.video_codec in REMUXABLE_VIDEO
        and found.pixel_format in PLAYABLE_PIXEL_FORMATS
        and found.sps is not None
        and (found.audio_codec is None or found.audio_codec in REMUXABLE_AUDIO)
    )


def _open_output(path: Path) -> av.container.OutputContainer:
    # faststart: the index first; bitexact: no encoder tag, no creation time.
    options = {"movflags": "+faststart", "fflags": "+bitexact"}
    output = av.open(str(path), "w", format="mp4", options=options)
    output.metadata.clear()
    return output


def remux(
    source: av.container.InputContainer,
    target: Path,
    found: Probe,
    limits: VideoLimits,
    rotation: int,
) -> None:
    """Copy the H.264/AAC packets into a new MP4 whose display matrix is the quarter turn
    `rotation` (see `display_rotation`), bounding what the packets hold as they come (see
    `_Pace`) and refusing a file that ends early.

    A remux never sees a frame, so a frame size other than the header's could pass through it:
    H.264 carries its dimensions in a sequence parameter set (SPS), which an MP4 keeps in its
    header (avcC) but which a packet may also carry (NAL type 7) to change them mid-stream. A
    packet whose SPS differs from the header's one (or new extradata as side data) stops the
    remux (`_NeedsDecoding`): the file is transcoded instead, where every decoded frame's size
    is checked. Only the NAL units' headers are read, not the slices."""
    streams = [source.streams.video[0], *source.streams.audio[:1]]
    video_index = streams[0].index
    paces = {s.index: _Pace(limits, video=s.index == video_index) for s in streams}
    with _open_output(target) as output:
        mapping = {s.index: output.add_stream_from_template(s) for s in streams}
        for stream in mapping.values():
            stream.metadata.clear()
        video = mapping[video_index]
        assert isinstance(video, av.VideoStream)
        video.set_display_rotation(rotation)  # in place of the template's matrix
        last = 0.0
        for packet in source.demux(streams):
            if packet.dts is None:
                continue
            index = packet.stream.index
            paces[index].check(_packet_seconds(packet))
            if index == video_index:
                _check_parameter_sets(packet, found)
                if packet.pts is not None and packet.time_base:
                    last = max(last, float(packet.pts * packet.time_base))
            packet.stream = mapping[index]
            output.mux(packet)
    if last + 2 / found.fps < found.seconds * 0.9:
        raise InvalidVideo(
            f"is truncated: its frames stop at {last:.2f} s of {found.seconds:.2f} s"
        )


def _check_parameter_sets(packet: av.Packet, found: Probe) -> None:
    """Raise _NeedsDecoding if the packet carries an SPS other than the header's, new
    extradata, or NAL lengths that do not add up."""
    if packet.has_sidedata("new_extradata"):
        raise _NeedsDecoding
    data = memoryview(bytes(packet))
    size, offset = found.nal_length_size, 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + size], "big")
        start = offset + size
        offset = start + length
        if length == 0 or offset > len(data):
            raise _NeedsDecoding
        if data[start] & 0x1F == 7 and data[start:offset] != found.sps:
            raise _NeedsDecoding


def transcode(
    source: av.container.InputContainer,
    target: Path,
    found: Probe,
    limits: VideoLimits,
    rotation: int,
) -> None:
    """Decode every frame and encode H.264 (4:2:0, even dimensions) and AAC. Packets are
    bounded before they are decoded, and the decoded frames again (`_Pace`); a frame larger
    than the limits (a stream that changes its dimensions) is refused, the first one.

    The rotation is carried, not applied: the frames keep their coded orientation and the
    output's display matrix is the quarter turn `rotation`, as in a remux. A remux cannot turn
    frames without decoding them, so this keeps one rule for both paths (every browser that
    plays H.264 MP4 applies the `tkhd` matrix, and the reported size and the poster follow
    that same turn); turning each frame here would cost a transpose per frame and a second
    frame buffer inside the sandbox's memory limit, for a picture a browser shows alike."""
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
        video.set_display_rotation(rotation)
        audio = None
        if in_audio is not None:
            audio = output.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "stereo"
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        decoded = 0
        streams = [s for s in (in_video, in_audio) if s is not None]
        paces = {s.index: _Pace(limits, video=s is in_video) for s in streams}
        frames = _Pace(limits, video=True)
        for frame in _decoded(source, streams, paces):
            if isinstance(frame, av.VideoFrame):
                _check_frame_size(frame, limits)
                frames.check(frame.time)
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


def _decoded(
    source: av.container.InputContainer, streams: list, paces: dict[int, _Pace]
) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """The streams' frames, each packet checked against its stream's bounds before it is
    decoded (the final empty packets flush the decoders)."""
    for packet in source.demux(streams):
        if packet.size:
            paces[packet.stream.index].check(_packet_seconds(packet))
        yield from packet.decode()  # type: ignore[misc]


def poster(clean: Path, target: Path, seconds: float, rotation: int) -> tuple[int, int]:
    """A JPEG of the first frame at or past POSTER_AT_SECONDS (a quarter in, if shorter),
    turned upright by `rotation` (the quarter turn the clean copy carries). Returns its width
    and height: the video's as displayed (a quarter turn swaps the coded ones)."""
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
    if rotation:
        image = image.transpose(UPRIGHT[rotation])
    image.save(target, "JPEG", quality=85)
    return image.width, image.height


def clean_copy(source_path: Path, out_dir: Path, limits: VideoLimits) -> dict[str, object]:
    """Verify the file and write VIDEO_FILE and POSTER_FILE into `out_dir`. Run it only inside
    the sandbox (see the module docstring). Returns what the clean copy really holds (width
    and height as displayed, with the display rotation applied).

    The limits are enforced three times: on the header (`probe`: refuses before any work), on
    what is demuxed and decoded (`_Pace`, frame sizes: a header can lie), and on the clean copy
    (its duration, from the timestamps of what was written)."""
    with source_path.open("rb") as file:
        demuxer = sniff(file.read(16))
    if demuxer is None:
        raise InvalidVideo("is not an MP4, QuickTime or WebM file")
    clean = out_dir / VIDEO_FILE
    try:
        with av.open(str(source_path), format=demuxer) as source:
            found = probe(source, demuxer, limits)
            rotation = display_rotation(source, limits)
        path = "remux" if remuxable(found) else "transcode"
        if path == "remux":
            with av.open(str(source_path), format=demuxer) as source:
                try:
                    remux(source, clean, found, limits, rotation)
                except _NeedsDecoding:
                    path = "transcode"
        if path == "transcode":
            clean.unlink(missing_ok=True)
            with av.open(str(source_path), format=demuxer) as source:
                transcode(source, clean, found, limits, rotation)
        with av.open(str(clean)) as result:
            seconds = _duration(result, result.streams.video[0])
        if seconds > limits.max_seconds + DURATION_SLACK_SECONDS:
            raise InvalidVideo(f"lasts {seconds:.3g} s, over {limits.max_seconds:g} s")
        width, height = poster(clean, out_dir / POSTER_FILE, seconds, rotation)
    except InvalidVideo:
        raise
    except (av.FFmpegError, ValueError, OSError, StopIteration) as exc:
        raise InvalidVideo("cannot be read as a video", detail=f"{exc!r}") from None
    return {
        "width": width,
        "height": height,
        "duration_ms": round(seconds * 1000),
        "rotation": rotation,
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
        if exc.detail:
            header["detail"] = exc.detail[:1000]
    except MemoryError:
        header = {"error": "decoding it needs more memory than allowed"}
    header["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(json.dumps(header) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
