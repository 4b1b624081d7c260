"""What an uploaded file really is, and a clean copy of it to publish (pure; CPU-bound, so the
caller runs it in a thread).

A presigned PUT lets the client send any bytes. Before anything is published we check the magic
bytes against the declared type, decode the image with Pillow (bounded in pixels), and re-encode
it, which drops EXIF (location included), XMP and text chunks.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

CONTENT_TYPES = {
    "image/jpeg": ("JPEG", "jpg"),
    "image/png": ("PNG", "png"),
    "image/gif": ("GIF", "gif"),
    "image/webp": ("WEBP", "webp"),
}


class InvalidImage(ValueError):
    """The bytes are not a decodable image of the declared type within the limits."""


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


def clean_copy(data: bytes, declared_type: str, max_pixels: int) -> CleanImage:
    """Verify `data` is an image of `declared_type` and return it re-encoded without metadata."""
    if sniff(data) != declared_type:
        raise InvalidImage(f"the file is not {declared_type}")
    pil_format, extension = CONTENT_TYPES[declared_type]
    try:
        with Image.open(io.BytesIO(data), formats=[pil_format]) as probe:
            if probe.width * probe.height > max_pixels:
                raise InvalidImage(f"image larger than {max_pixels} pixels")
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
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"cannot decode the image: {exc}") from None
    return CleanImage(out.getvalue(), width, height, declared_type, extension)
