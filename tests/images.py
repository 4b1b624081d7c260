"""Image files made on the fly for media tests."""

from __future__ import annotations

import io

from PIL import Image

GPS_IFD = 0x8825


def jpeg_with_gps(width: int = 64, height: int = 48) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    exif = image.getexif()
    exif[0x010F] = "SpyCam"  # Make
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png(width: int = 20, height: int = 10) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 0, 255, 128)).save(out, "PNG")
    return out.getvalue()


def exif_of(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        return {**dict(exif), **dict(exif.get_ifd(GPS_IFD))}


def gif_bomb(frames: int = 20, width: int = 6300, height: int = 6300) -> bytes:
    """An animated GIF that is small on disk and huge decoded: one blank frame encoded by
    Pillow, its image block repeated (a GIF needs nothing else between frames)."""
    out = io.BytesIO()
    Image.new("P", (width, height), 0).save(out, "GIF")
    data = out.getvalue()
    palette = 3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0
    start = 13 + palette  # header, logical screen descriptor, global palette
    assert data[start : start + 1] == b"," and data.endswith(b";")
    return data[:start] + data[start:-1] * frames + b";"
