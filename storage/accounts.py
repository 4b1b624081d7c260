"""Account records in the documents Redis: profiles and the username registry.

Keys (this module is their only writer):
  user:{<id>}          JSON: username, display_name, password_hash, created_at_ms. Hash-tagged
                       by user id, so it sits on the user's shard next to their tweets; a
                       string, so a page of authors is one MGET per shard.
  tokens:{<id>}        the user's token version (absent = 0): tokens carry the version they
                       were issued under, and logOutEverywhere increments it.
  username:<lower>     string: the user id that owns this name, compared case-insensitively.
                       `SET NX` on it is the single point where a sign-up commits; two sign-ups
                       racing for `Bob` and `bob` cannot both win it.

Order of a sign-up (see social/accounts.py): profile, graph node, then the username claim. Until
the claim, nothing can reach the new id; a sign-up that dies before it leaves an unreachable profile
and node, which the `collect_unclaimed_account` job (social/fanout.py) removes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from storage.redis_clients import DocumentsRedis, mget, reply_bytes


@dataclass(frozen=True)
class Profile:
    """An account as stored (written at sign-up and by seeding); read back only to log in."""

    user_id: int
    username: str
    display_name: str
    password_hash: str
    created_at_ms: int

    @classmethod
    def from_json(cls, raw: bytes) -> Profile:
        return cls(**json.loads(raw))

    def public(self) -> PublicProfile:
        return PublicProfile(self.user_id, self.username, self.display_name, self.created_at_ms)


@dataclass(frozen=True)
class PublicProfile:
    """What everyone may read of an account: no password hash rides along."""

    user_id: int
    username: str
    display_name: str
    created_at_ms: int


def profile_key(user_id: int) -> str:
    return f"user:{{{user_id}}}"


def token_version_key(user_id: int) -> str:
    return f"tokens:{{{user_id}}}"


def username_key(username: str) -> str:
    return f"username:{username.lower()}"


class NoSuchAccount(Exception):
    """No account (profile) exists for this user id."""


class AccountStore:
    """Profiles and username claims. All methods raise redis errors as they come."""

    def __init__(self, client: DocumentsRedis) -> None:
        self._redis = client

    async def token_version(self, user_id: int) -> int:
        """The user's current token version; NoSuchAccount if the user has no profile (so a
        validly signed token of an account that was never completed is refused). One round
        trip: both keys sit on the user's shard."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(token_version_key(user_id))
            pipe.exists(profile_key(user_id))
            version, exists = await pipe.execute()
        if not exists:
            raise NoSuchAccount(user_id)
        return int(version or 0)

    async def revoke_tokens(self, user_id: int) -> int:
        """Invalidate every token issued so far (they carry the old version); the new version."""
        return int(await self._redis.incr(token_version_key(user_id)))

    async def ping(self) -> None:
        await self._redis.ping()

    async def save_profile(self, profile: Profile) -> None:
        await self.save_profiles([profile])

    async def save_profiles(self, profiles: list[Profile]) -> None:
        """Write profiles in one pipeline (a bulk loader for seeding, and the single case)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for profile in profiles:
                pipe.set(profile_key(profile.user_id), json.dumps(asdict(profile)))
            await pipe.execute()

    async def delete_profile(self, user_id: int) -> None:
        await self._redis.delete(profile_key(user_id))

    async def claim_username(self, username: str, user_id: int) -> bool:
        """Make `user_id` the owner of `username` (any case). True if it is (now or already)."""
        key = username_key(username)
        if await self._redis.set(key, user_id, nx=True):
            return True
        return await self.owner_of(username) == user_id

    async def owner_of(self, username: str) -> int | None:
        raw = await self._redis.get(username_key(username))
        return None if raw is None else int(raw)

    async def profiles(self, user_ids: list[int]) -> dict[int, PublicProfile]:
        """Public profiles by id, one round trip per shard; ids without one are left out."""
        if not user_ids:
            return {}
        raws = await mget(self._redis, [profile_key(user_id) for user_id in user_ids])
        return {
            user_id: Profile.from_json(raw).public()
            for user_id, raw in zip(user_ids, raws, strict=True)
            if raw is not None
        }

    async def credentials(self, user_id: int) -> Profile | None:
        """The whole record, password hash included: for checking a log-in only."""
        raw = await self._redis.get(profile_key(user_id))
        return None if raw is None else Profile.from_json(reply_bytes(raw))
