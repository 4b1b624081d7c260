"""Image verification in a bounded child process (`storage.sandbox`): `storage/images.py` runs
as the child, so whatever the file does, the API process only ever holds the upload and the
clean copy."""

from __future__ import annotations

from dataclasses import dataclass

from storage import images
from storage.images import CONTENT_TYPES, CleanImage, InvalidImage
from storage.sandbox import ChildLimits, Sandbox, SandboxRefused


@dataclass(frozen=True)
class SandboxLimits:
    max_pixels: int  # frames x width x height
    max_frames: int
    memory_bytes: int  # the child's whole address space (interpreter and Pillow included)
    cpu_seconds: int
    timeout_seconds: float  # wall clock, then the child is killed
    concurrency: int  # children at once per process


class ImageSandbox:
    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self._sandbox = Sandbox(
            ChildLimits(
                memory_bytes=limits.memory_bytes,
                cpu_seconds=limits.cpu_seconds,
                timeout_seconds=limits.timeout_seconds,
                concurrency=limits.concurrency,
            )
        )

    async def clean_copy(self, data: bytes, declared_type: str) -> CleanImage:
        """What `storage.images.clean_copy` returns, computed in a bounded child process.
        Raises InvalidImage with the reason (including exceeding the limits)."""
        args = [declared_type, str(self.limits.max_pixels), str(self.limits.max_frames)]
        try:
            result, body = await self._sandbox.run(images.__file__, args, data)
        except SandboxRefused as exc:
            raise InvalidImage(str(exc)) from None
        extension = CONTENT_TYPES[declared_type][1]
        return CleanImage(body, result["width"], result["height"], declared_type, extension)
