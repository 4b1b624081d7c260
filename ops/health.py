"""/healthz: 200 when the graph and the documents Redis answer, else 503 naming what failed."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse

HEALTH_TIMEOUT_SECONDS = 2.0


async def _check(name: str, probe) -> tuple[str, str]:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await probe()
    except Exception as exc:  # any failure is the answer, not an error of this endpoint
        return name, f"down: {type(exc).__name__}"
    return name, "ok"


async def healthz(request: Request) -> JSONResponse:
    services = request.app.state.services
    results = dict(
        await asyncio.gather(
            _check("graph", services.graph.ping),
            _check("redis", services.accounts.ping),
        )
    )
    healthy = all(state == "ok" for state in results.values())
    return JSONResponse(results, status_code=200 if healthy else 503)
