"""Bearer tokens: HS256-signed JWTs naming the user and their token version, with an expiry."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"  # pinned: a token claiming any other algorithm ("none" included) is refused


class InvalidToken(Exception):
    """The token is malformed, wrongly signed, or expired."""


@dataclass(frozen=True)
class Claims:
    user_id: int
    token_version: int
    expires_at: int


class TokenIssuer:
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._ttl = ttl_seconds

    def issue(self, user_id: int, token_version: int) -> str:
        now = int(time.time())
        payload = {"sub": str(user_id), "ver": token_version, "iat": now, "exp": now + self._ttl}
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp", "iat", "ver"]},
            )
            return Claims(
                user_id=int(payload["sub"]),
                token_version=int(payload["ver"]),
                expires_at=int(payload["exp"]),
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from exc
