"""The stores' Lua scripts: one `<name>.lua` file per script, read once, registered per client.

Each file opens with a comment block giving its KEYS, its ARGV and its return value (after a
`#!lua flags=...` first line where a script declares flags). A file whose name starts with `_`
is a snippet, not a script: a script pulls one in with a line of exactly
`-- include: _name.lua`, which loading replaces by the snippet's text (one level: snippets
include nothing). That is the only composition; what a script runs is its file plus the snippets
it names.

Cluster: a script's KEYS must all hash to one slot (Redis refuses declared keys of several slots
with CROSSSLOT, whatever the script's flags). The scripts of the documents Redis (tweets, media)
and most of the feed Redis keep every key of one call under one `{A}` or `{V}` tag. `push.lua`
and `unpush.lua` serve a whole batch of viewers: they declare one key (which routes the call)
and take the others in ARGV, and declare `allow-cross-slot-keys`, which lets them touch keys of
any slot held by the node that runs them; the caller sends one call per node holding part of
the batch (`run_on_node`), so every key and channel of a call lives on that node. On one server
the whole batch is one call.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from storage.redis_clients import RedisClient

_DIR = Path(__file__).parent
_INCLUDE = re.compile(r"^-- include: (_\w+\.lua)$", re.MULTILINE)


def _read(file_name: str) -> str:
    return (_DIR / file_name).read_text(encoding="utf-8")


@functools.cache
def source(name: str) -> str:
    """The text of script `name` (`<name>.lua`) with its snippets included; read once."""
    return _INCLUDE.sub(lambda m: _read(m.group(1)).rstrip("\n"), _read(f"{name}.lua"))


@functools.cache
def sha(name: str) -> str:
    """The SHA1 by which Redis caches script `name` (EVALSHA)."""
    return hashlib.sha1(source(name).encode()).hexdigest()


def register(client: RedisClient, name: str) -> AsyncScript:
    """Script `name` bound to `client` (EVALSHA, loading the script when the server lacks it).
    On a cluster, routed by the slot of its keys, which must share one."""
    return client.register_script(source(name))


async def run_on_node(
    cluster: RedisCluster,
    node: ClusterNode,
    name: str,
    keys: Sequence[EncodableT],
    args: Sequence[EncodableT],
) -> Any:
    """Run script `name` on one node of a cluster: EVALSHA, or EVAL if that node does not have
    it cached yet (which caches it there). If the node answers MOVED for the declared keys,
    redis-py follows it to the node their slot moved to."""
    try:
        return await cluster.execute_command(
            "EVALSHA", sha(name), len(keys), *keys, *args, target_nodes=node
        )
    except redis.exceptions.NoScriptError:
        return await cluster.execute_command(
            "EVAL", source(name), len(keys), *keys, *args, target_nodes=node
        )
