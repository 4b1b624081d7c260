"""A soak: mixed load against the embedded stack (`python -m devstack`, as `make run` starts it)
for SOAK_SECONDS (default 60): feed reads, timeline reads, tweets, follows. It prints the 5xx
count, errors by code, and the API process's open file descriptors and memory over time."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

from devstack.servers import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parent.parent
USERS = 200
CONCURRENCY = 8
SAMPLE_EVERY_SECONDS = 5.0

SIGN_UP = """
mutation($u: String!) {
  signUp(username: $u, password: "soak password", displayName: $u) { token user { id } }
}
"""
FOLLOW = "mutation($id: ID!) { follow(userId: $id) { id } }"
TWEET = "mutation($t: String!) { createTweet(text: $t) { id } }"
FEED = "{ feed(first: 20) { edges { node { id text author { username } } } } }"
TIMELINE = (
    "query($u: String!) { user(username: $u) { tweets(first: 20) { edges { node { id } } } } }"
)


def api_pid(port: int) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"uvicorn" in b" ".join(argv) and str(port).encode() in argv:
                return int(entry.name)
    raise RuntimeError("API process not found")


def process_sample(pid: int) -> tuple[int, int, int]:
    """(open fds, of which sockets, resident memory in KiB)."""
    fds = list(Path(f"/proc/{pid}/fd").iterdir())
    sockets = sum(1 for fd in fds if os.readlink(fd).startswith("socket:"))
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
    return len(fds), sockets, rss


async def run(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as var_dir:
        port = free_port()
        env = {**os.environ, "VAR_DIR": var_dir, "PORT": str(port),
               "DEVSTACK_REDIS_PORT": str(free_port()), "DEVSTACK_GRAPH_PORT": str(free_port()),
               "RATE_SIGNUPS": "100000/60", "RATE_TWEETS": "100000/60",
               "RATE_FOLLOWS": "100000/60"}  # fmt: skip
        stack = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devstack", cwd=ROOT, env=env, start_new_session=True,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://{LOOPBACK}:{port}"
            await _wait_healthy(url)
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                await _soak(client, api_pid(port), seconds)
        finally:
            os.killpg(stack.pid, signal.SIGINT)  # as Ctrl-C would
            await asyncio.wait_for(stack.wait(), 60)


async def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the stack did not become healthy")


async def _soak(client: httpx.AsyncClient, pid: int, seconds: float) -> None:
    rng = random.Random(11)
    users = []
    for i in range(USERS):
        data = await _call(client, SIGN_UP, {"u": f"soak{i}"}, None, collections.Counter())
        users.append((f"soak{i}", data["signUp"]["token"], data["signUp"]["user"]["id"]))
    statuses: collections.Counter = collections.Counter()
    codes: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    samples = [process_sample(pid)]
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            _, token, _ = rng.choice(users)
            kind = rng.choices(["feed", "timeline", "tweet", "follow"], [60, 20, 12, 8])[0]
            if kind == "feed":
                query, variables = FEED, {}
            elif kind == "timeline":
                query, variables = TIMELINE, {"u": rng.choice(users)[0]}
            elif kind == "tweet":
                query, variables = TWEET, {"t": f"soak tweet {rng.random()}"}
            else:
                query, variables = FOLLOW, {"id": rng.choice(users)[2]}
            kinds[kind] += 1
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
            statuses[response.status_code // 100 * 100] += 1
            for error in response.json().get("errors", []):
                codes[error["extensions"]["code"]] += 1

    async def sampler() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(SAMPLE_EVERY_SECONDS)
            samples.append(process_sample(pid))

    started = time.monotonic()
    await asyncio.gather(sampler(), *(worker() for _ in range(CONCURRENCY)))
    elapsed = time.monotonic() - started
    total = sum(kinds.values())
    print(f"{total:,} requests in {elapsed:.0f} s ({total / elapsed:,.0f}/s): {dict(kinds)}")
    print(f"HTTP status classes: {dict(statuses)}; 5xx: {statuses.get(500, 0)}")
    print(f"GraphQL errors by code: {dict(codes) or 'none'}")
    fds, sockets, rss = zip(*samples, strict=True)
    print(f"API process, sampled every {SAMPLE_EVERY_SECONDS:.0f} s (idle -> after the first "
          f"{SAMPLE_EVERY_SECONDS:.0f} s of load -> end): open fds {fds[0]} -> {fds[1]} -> "
          f"{fds[-1]}, sockets {sockets[0]} -> {sockets[1]} -> {sockets[-1]}, RSS "
          f"{rss[0] / 1024:.0f} -> {rss[1] / 1024:.0f} -> {rss[-1] / 1024:.0f} MiB")  # fmt: skip


async def _call(client, query, variables, token, codes) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = (await client.post("/graphql", json={"query": query, "variables": variables},
                              headers=headers)).json()  # fmt: skip
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]
