"""Load from `wrk` (Debian package `wrk`): a C load generator with a Lua script per connection,
so the client costs a small fraction of what the server does per request (its own CPU is
measured and printed beside the server's, to show it).

The scripts are generated into the benchmark's temp dir with their data (tokens, request
bodies) inlined. Each counts, per wrk thread, responses that are not 200, 200s whose body holds
a GraphQL `errors` key, and (feed pages) pages that do not hold the expected number of authors;
`done()` prints one `BENCH {json}` line that `run_wrk` parses, so nothing depends on wrk's
human-readable report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

WRK_MISSING = "skipped: wrk is not installed (Debian: apt-get install -y wrk)"

# Shared by every script: per-thread counters (globals, so `thread:get` can read them), a
# per-thread random seed, error counting in `response`, and the summary line in `done`.
_PRELUDE = r"""
local threads = {}
function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

non200, graphql_errors, short_pages, cache_hits = 0, 0, 0, 0

local function count_authors(body)
  local n, at = 0, 1
  while true do
    at = string.find(body, '"username"', at, true)
    if not at then return n end
    n, at = n + 1, at + 10
  end
end

function response(status, headers, body)
  if headers["X-Cache-Status"] == "HIT" then cache_hits = cache_hits + 1 end
  if status ~= 200 then
    non200 = non200 + 1
  elseif string.find(body, '"errors"', 1, true) then
    graphql_errors = graphql_errors + 1
  elseif EXPECT_AUTHORS > 0 and count_authors(body) ~= EXPECT_AUTHORS then
    short_pages = short_pages + 1
  end
end

function done(summary, latency, requests)
  local out = {non200 = 0, graphql_errors = 0, short_pages = 0, cache_hits = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(out) do out[name] = out[name] + thread:get(name) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "timeouts": %d, "non200": %d, "graphql_errors": %d, ' ..
    '"short_pages": %d, "cache_hits": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write, e.timeout, out.non200, out.graphql_errors, out.short_pages,
    out.cache_hits))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    timeouts: int
    non200: int
    graphql_errors: int
    short_pages: int
    cache_hits: int  # responses with `X-Cache-Status: HIT` (nginx's cache)
    client_cpu_seconds: float  # wrk's own user + system time

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        """Every failed request: socket errors, timeouts, non-200, GraphQL errors."""
        return self.socket_errors + self.timeouts + self.non200 + self.graphql_errors

    def client_ms_per_request(self) -> float:
        return self.client_cpu_seconds / max(1, self.requests) * 1000

    def summary(self) -> str:
        return (
            f"{self.rate:,.0f} req/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"{self.requests:,} requests, {self.errors} errors"
        )


def available() -> bool:
    return shutil.which("wrk") is not None


def lua_quote(text: str) -> str:
    """A Lua string literal for `text`: bytes other than printable ASCII, quotes and
    backslashes as three-digit decimal escapes (valid in Lua 5.1 and LuaJIT, which wrk uses)."""
    out = []
    for byte in text.encode():
        if byte in b'"\\' or not 32 <= byte < 127:
            out.append(f"\\{byte:03d}")
        else:
            out.append(chr(byte))
    return '"' + "".join(out) + '"'


def lua_table(items: Sequence[str]) -> str:
    """A Lua table constructor of string literals."""
    return "{\n" + ",\n".join(lua_quote(item) for item in items) + "\n}"


def script(expect_authors: int, body: str) -> str:
    """A whole wrk script: the shared prelude (counters, `response`, `done`) and `body`, which
    defines `init` and `request` (and `delay`, to pace). A 200 must hold `expect_authors`
    usernames (0: any number)."""
    return f"EXPECT_AUTHORS = {expect_authors}\n{_PRELUDE}\n{body}"


def post_request(path: str, body: str, token: str | None) -> str:
    """A Lua expression building one POST request with `wrk.format` (run at `init`)."""
    headers = '["Content-Type"] = "application/json"'
    if token is not None:
        headers += f', ["Authorization"] = {lua_quote("Bearer " + token)}'
    return f"wrk.format('POST', {lua_quote(path)}, {{{headers}}}, {lua_quote(body)})"


def rotating_script(requests: Sequence[str], expect_authors: int) -> str:
    """Each request is the next of `requests` (Lua expressions from `post_request`, built once
    per thread at `init`), starting at a different place per wrk thread."""
    table = ",\n".join(requests)
    return script(
        expect_authors,
        "local reqs, i = {}, 0\n"
        "function init(args)\n"
        f"  reqs = {{\n{table}\n  }}\n"
        "  i = thread_id * 7919\n"
        "end\n"
        "function request()\n"
        "  i = i + 1\n"
        "  return reqs[i % #reqs + 1]\n"
        "end\n",
    )


def get_script(path: str) -> str:
    """The same anonymous GET every time (a storm on one URL)."""
    return script(
        0,
        f"local req = nil\nfunction request()\n  req = req or wrk.format('GET', "
        f"{lua_quote(path)})\n  return req\nend\n",
    )


def write_script(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.lua"
    path.write_text(text)
    return path


def run_wrk(
    url: str,
    script_path: Path,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    timeout_seconds: float = 5.0,
) -> WrkResult:
    """Run wrk against `url` with the script at `script_path`; its figures, and its own CPU
    time (from wait4's rusage). One wrk thread by default: on two cores, a second would take CPU
    from the server it measures."""
    argv = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        f"{timeout_seconds:g}s",
        "--latency",
        "-s",
        str(script_path),
        url,
    ]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    line = next((ln for ln in output.splitlines() if ln.startswith("BENCH ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    data = json.loads(line.removeprefix("BENCH "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        socket_errors=data["socket_errors"],
        timeouts=data["timeouts"],
        non200=data["non200"],
        graphql_errors=data["graphql_errors"],
        short_pages=data["short_pages"],
        cache_hits=data["cache_hits"],
        client_cpu_seconds=usage.ru_utime + usage.ru_stime,
    )
