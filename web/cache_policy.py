"""Which GraphQL responses a shared cache (nginx's micro-cache, a CDN) may keep.

Only one kind: an anonymous `GET /graphql` (no Authorization header at all) whose operation was a
query and whose result has no error. Anonymous callers see nothing personalised (the viewer's own
fields need a token), so such a result is the same for everyone for a few seconds. The view
(web/graphql_http.py) marks those `public, max-age=<PUBLIC_CACHE_SECONDS>`; this middleware makes
every other response on the path `no-store`, whatever produced it (refusals before the view runs,
errors, the GraphiQL page), and downgrades a public mark it finds on a request it would not have
allowed one for: the view opts a response in, only this module decides what leaves.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_STORE = "no-store"
VARY = ("Authorization", "Accept")


def public_cache_control(max_age: int) -> str:
    return f"public, max-age={max_age}"


def anonymous_get(method: str, headers: Headers) -> bool:
    """A request whose answer may be shared: a GET carrying no Authorization header (any value,
    even one that is not a valid token, makes the request private)."""
    return method == "GET" and "authorization" not in headers


class CachePolicy:
    """ASGI middleware for one path: `Cache-Control: no-store` on every response the view did not
    mark public (or may not have), and `Vary: Authorization, Accept` on all of them."""

    def __init__(self, app: ASGIApp, *, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        shareable = anonymous_get(scope["method"], Headers(scope=scope))

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                marked = headers.get("cache-control", "").startswith("public")
                if not (shareable and marked and message["status"] == 200):
                    headers["cache-control"] = NO_STORE
                _vary_on(headers, VARY)
            await send(message)

        await self.app(scope, receive, send_with_policy)


def _vary_on(headers: MutableHeaders, names: tuple[str, ...]) -> None:
    """Add `names` to the Vary header, keeping what is there and naming nothing twice."""
    present = [name.strip() for name in headers.get("vary", "").split(",") if name.strip()]
    lowered = {name.lower() for name in present}
    headers["vary"] = ", ".join(present + [n for n in names if n.lower() not in lowered])
