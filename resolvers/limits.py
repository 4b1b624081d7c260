"""Rate limits applied by resolvers: one call per limited action."""

from __future__ import annotations

import math

from resolvers.context import RequestContext
from schema.errors import RateLimited
from settings import parse_rate
from storage.rate_limits import Verdict


async def enforce(ctx: RequestContext, action: str, subject: object, rate: str) -> Verdict:
    """Count one `action` by `subject` against `rate` ("N/S"), or RATE_LIMITED with
    `extensions.retryAfter` (whole seconds). The verdict names the attempt, to forgive it."""
    limit, window = parse_rate(rate)
    verdict = await ctx.services.rate_limits.hit(action, str(subject), limit, window)
    if not verdict.allowed:
        retry_after = math.ceil(verdict.retry_after_seconds)
        raise RateLimited(
            f"too many attempts ({action}); retry in {retry_after} s", retryAfter=retry_after
        )
    return verdict
