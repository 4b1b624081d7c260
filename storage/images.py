"""What an uploaded file really is, and a clean copy of it to publish.

A presigned PUT lets the client send any bytes. Before anything is published we check the magic
bytes against the declared type, bound the whole image (frames x width x height, and the frame
count) before decoding a single pixel, decode it with Pillow and re-encode it, which drops EXIF
(location included), XMP and text chunks.

Decoding hostile files is dangerous (an animated GIF of a few hundred KB can decode to gigabytes),
so the API never runs this in its own process: `storage/sandbox.py` runs this file as a
child process (`main`), which first caps its own memory and CPU time with `resource` limits.
"""

from __future__ import annotations

import io
import json
import resource
import sys
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

CONTENT_TYPES = {
    "image/jpeg": ("JPEG", "jpg"),
    "image/png": ("PNG", "png"),
    "image/gif": ("GIF", "gif"),
    "image/webp": ("WEBP", "webp"),
}


class InvalidImage(ValueError):
    """The bytes are not a decodable image of the declared type within the limits; the message
    is the reason (short, fixed wording for the client); `detail` is what the decoder said, for
    the server's log only (Pillow's messages carry reprs of its buffers, memory addresses
    included)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    width: int
    height: int
    content_type: str
    extension: str


def sniff(data: bytes) -> str | None:
    """The content type the magic bytes say, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _check_budget(probe: Image.Image, max_pixels: int, max_frames: int) -> None:
    """Refuse from the headers alone: counting frames reads their descriptors, decodes none."""
    frames = getattr(probe, "n_frames", 1)
    if frames > max_frames:
        raise InvalidImage(f"more than {max_frames} frames")
    if frames * probe.width * probe.height > max_pixels:
        raise InvalidImage(f"larger than {max_pixels} pixels (frames x width x height)")


def clean_copy(data: bytes, declared_type: str, max_pixels: int, max_frames: int) -> CleanImage:
    """Verify `data` is an image of `declared_type` within the limits and return it re-encoded
    without metadata. Run it only inside the sandbox (see the module docstring)."""
    if sniff(data) != declared_type:
        raise InvalidImage(f"the file is not {declared_type}")
    pil_format, extension = CONTENT_TYPES[declared_type]
    try:
        with Image.open(io.BytesIO(data), formats=[pil_format]) as probe:
            _check_budget(probe, max_pixels, max_frames)
            probe.verify()
        with Image.open(io.BytesIO(data), formats=[pil_format]) as image:
            image.load()
            out = io.BytesIO()
            if pil_format == "GIF":
                image.save(out, "GIF", save_all=True)  # keeps animation, drops comments
            else:
                upright = ImageOps.exif_transpose(image)  # apply rotation before EXIF goes
                if pil_format == "JPEG" and upright.mode not in ("RGB", "L"):
                    upright = upright.convert("RGB")
                upright.save(out, pil_format, **({"quality": 90} if pil_format != "PNG" else {}))
            width, height = image.size if pil_format == "GIF" else upright.size
    except InvalidImage:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise InvalidImage("cannot decode the image", detail=f"{exc!r}") from None
    return CleanImage(out.getvalue(), width, height, declared_type, extension)


def main(argv: list[str]) -> None:
    """Child entry (`storage.sandbox`): argv = memory bytes, CPU seconds, declared type, max
    pixels, max frames; the file on stdin. Writes one JSON line (the result, or {"error":
    reason} with the decoder's `detail` for the log), then the clean bytes. The limits are set
    before the file is even read."""
    memory_bytes, cpu_seconds, declared_type, max_pixels, max_frames = argv
    resource.setrlimit(resource.RLIMIT_AS, (int(memory_bytes), int(memory_bytes)))
    resource.setrlimit(resource.RLIMIT_CPU, (int(cpu_seconds), int(cpu_seconds)))
    Image.MAX_IMAGE_PIXELS = int(max_pixels)  # any single frame above it: refused by Pillow
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    header: dict[str, str | int]
    try:
        image = clean_copy(sys.stdin.buffer.read(), declared_type, int(max_pixels), int(max_frames))
    except InvalidImage as exc:
        header, body = {"error": str(exc)}, b""
        if exc.detail:
            header["detail"] = exc.detail[:1000]
    except MemoryError:
        header, body = {"error": "decoding it needs more memory than allowed"}, b""
    else:
        header = {"width": image.width, "height": image.height}
        body = image.data
    sys.stdout.buffer.write(json.dumps(header).encode() + b"\n" + body)


if __name__ == "__main__":
    main(sys.argv[1:])
