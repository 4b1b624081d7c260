"""Static files whose file is opened before the response's headers go out.

Starlette's FileResponse sends the status and headers first and opens the file only then. A
published file deleted in between (a tweet deleted while its video is fetched) leaves a
response whose headers promised a body that cannot come: the server drops the connection and
logs an error. Here the file is opened, its descriptor held, before anything is sent. A file
that exists at that moment is served completely (on POSIX an open descriptor still reads a
file after it is unlinked), and one already gone is a clean 404. The headers (length, ETag,
Last-Modified) are taken from the open descriptor (`fstat`), so they describe the bytes sent.
The body is still read and sent in FileResponse's chunks (64 KiB), never whole; Range, HEAD
and conditional requests are FileResponse's and StaticFiles' own.

FileResponse opens its file in one place, `_open_file` (Starlette 1.x); the response here
hands it the held file instead. tests/test_media_ranges.py deletes a file as its headers are
sent, so a Starlette that opened the file some other way would fail there, not in production.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, PathLike, StaticFiles
from starlette.types import Receive, Scope, Send

# An ASGI server offering this would open the path itself, after the headers.
PATHSEND = "http.response.pathsend"


class HeldFiles(StaticFiles):
    """StaticFiles whose regular files are answered by `OpenFirst`."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        return OpenFirst(self, full_path, status_code)


class OpenFirst(Response):
    """Opens the file, then answers from the open file (or 304 Not Modified); raises a 404
    HTTPException if the file is gone by the time it is opened. The file is closed once the
    answer is sent or abandoned. A Response only to StaticFiles (`file_response`'s type): it
    has no headers or body of its own, so Response's constructor is not called."""

    def __init__(self, files: StaticFiles, path: PathLike, status_code: int) -> None:
        self.files, self.path, self.status_code = files, path, status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            file = await anyio.open_file(self.path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise HTTPException(404) from None  # deleted since StaticFiles looked it up
        try:
            stat_result = await anyio.to_thread.run_sync(os.fstat, file.wrapped.fileno())
            response: Response = HeldFileResponse(file, self.path, self.status_code, stat_result)
            if self.files.is_not_modified(response.headers, Headers(scope=scope)):
                response = NotModifiedResponse(response.headers)
            extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != PATHSEND}
            await response({**scope, "extensions": extensions}, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # closing must finish even if cancelled
                await file.aclose()


class HeldFileResponse(FileResponse):
    """A FileResponse that reads `file`, opened by its caller (who closes it), instead of
    opening its path after the headers are sent."""

    def __init__(
        self,
        file: anyio.AsyncFile[bytes],
        path: PathLike,
        status_code: int,
        stat_result: os.stat_result,
    ) -> None:
        super().__init__(path, status_code=status_code, stat_result=stat_result)
        self.file = file

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        yield self.file
