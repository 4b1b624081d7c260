"""The stores' Lua scripts: one `<name>.lua` file per script, read once, registered per client.

Each file opens with a comment block giving its KEYS, its ARGV and its return value. A file whose
name starts with `_` is a snippet, not a script: a script pulls one in with a line of exactly
`-- include: _name.lua`, which loading replaces by the snippet's text (one level: snippets
include nothing). That is the only composition; what a script runs is its file plus the snippets
it names.

Cluster: a script's KEYS must all hash to one slot. The scripts of the documents Redis (tweets,
media) keep every key of one call under the author's `{A}` tag; `push.lua` and `unpush.lua` take
a whole batch of viewers' feeds, which the feed role allows because it is a single server.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from redis.commands.core import AsyncScript

from storage.redis_clients import DocumentsRedis

_DIR = Path(__file__).parent
_INCLUDE = re.compile(r"^-- include: (_\w+\.lua)$", re.MULTILINE)


def _read(file_name: str) -> str:
    return (_DIR / file_name).read_text(encoding="utf-8")


@functools.cache
def source(name: str) -> str:
    """The text of script `name` (`<name>.lua`) with its snippets included; read once."""
    return _INCLUDE.sub(lambda m: _read(m.group(1)).rstrip("\n"), _read(f"{name}.lua"))


def register(client: DocumentsRedis, name: str) -> AsyncScript:
    """Script `name` bound to `client` (EVALSHA, loading the script when the server lacks it)."""
    return client.register_script(source(name))
