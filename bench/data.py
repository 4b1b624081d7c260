"""Seed data: the real socfb-Reed98 graph (962 people), each friendship loaded as two follows."""

from __future__ import annotations

import os
from pathlib import Path

ID_BASE = 10**15  # user ids in the benchmark: ID_BASE + the dataset's 0-based id


def reed98_path() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "socfb-Reed98"
    return Path(os.environ.get("REED98_DIR", default)) / "socfb-Reed98.edges"


def reed98_follows() -> tuple[list[int], list[tuple[int, int]]]:
    """(user ids, directed follow edges) of Reed98."""
    edges: list[tuple[int, int]] = []
    for line in reed98_path().read_text().split("\n"):
        if line.strip():
            a, b = (ID_BASE + int(x) for x in line.split())
            edges += [(a, b), (b, a)]
    users = sorted({u for edge in edges for u in edge})
    return users, edges
