"""/healthz: 200 when every backend's probe answers (the graph, the Redis roles), else 503
naming what failed. The probes come with the app's services (`Services.probes`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

HEALTH_TIMEOUT_SECONDS = 2.0


async def _check(name: str, probe: Callable[[], Awaitable[object]]) -> tuple[str, str]:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await probe()
    except Exception as exc:  # any failure is the answer, not an error of this endpoint
        return name, f"down: {type(exc).__name__}"
    return name, "ok"


async def healthz(request: Request) -> JSONResponse:
    probes = request.app.state.services.probes
    results = dict(await asyncio.gather(*(_check(name, p) for name, p in probes.items())))
    healthy = all(state == "ok" for state in results.values())
    return JSONResponse(results, status_code=200 if healthy else 503)
