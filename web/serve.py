"""Run the API under uvicorn with the server options that follow from Settings.

Every launcher (the embedded stack, the Docker image, the tests) goes through `uvicorn_options`,
so the WebSocket message cap and the trusted proxies cannot drift between them:
`python -m web.serve` (HOST, PORT and every other setting from the environment).
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from settings import Settings, SettingsError


def trusted_proxies(settings: Settings) -> list[str]:
    """TRUSTED_PROXIES as a list of addresses or networks (empty: trust no forwarded header)."""
    return [entry.strip() for entry in settings.trusted_proxies.split(",") if entry.strip()]


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments: WebSocket messages are bounded like HTTP bodies
    (MAX_BODY_BYTES; a larger one closes the socket with 1009), and X-Forwarded-For is believed
    only from TRUSTED_PROXIES (uvicorn's own default would trust any local peer)."""
    proxies = trusted_proxies(settings)
    options: dict[str, Any] = {
        "ws_max_size": settings.max_body_bytes,
        "proxy_headers": bool(proxies),
    }
    if proxies:
        options["forwarded_allow_ips"] = proxies
    return options


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"api: bad setting: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        "app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        **uvicorn_options(settings),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
