"""Sign-up, log-in and user lookup.

Who owns what: the documents Redis owns the account (profile hash with the password hash, and the
username claim); the graph owns only the user's node (id, username) and its follow edges.

A sign-up writes in an order a crash or retry cannot leave half-made:
  1. enqueue `collect_unclaimed_account`, delayed by the claim grace period (nothing written yet);
  2. save the profile under a fresh id (unreachable: no name points to it);
  3. create the graph node (idempotent MERGE on the id; still unreachable);
  4. claim the username with SET NX: the commit point. The winner's account is complete.
A crash before 4 leaves an unreachable profile and node that step 1's job deletes; a lost race
deletes them at once. A client retry simply starts over with a new id.
"""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
from dataclasses import dataclass

from auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from resolvers.context import RequestContext
from resolvers.limits import enforce
from schema.errors import BadUserInput, ServiceUnavailable, Unauthenticated
from settings import parse_rate
from storage.accounts import Profile

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_]{1,15}")
MAX_DISPLAY_NAME_LENGTH = 50
_BAD_CREDENTIALS = "invalid username or password"
# The log-in delay doubles with each failure past the free ones; this many more and it has long
# passed any sensible LOGIN_DELAY_MAX_SECONDS, so older failures need not be kept.
_FAILURES_KEPT_PAST_FREE = 32


@dataclass(frozen=True)
class Session:
    token: str
    profile: Profile


def validate_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username):
        raise BadUserInput("username must be 1-15 letters, digits or underscores", field="username")
    return username


def validate_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise BadUserInput(
            f"password must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters",
            field="password",
        )
    return password


def validate_display_name(display_name: str) -> str:
    cleaned = unicodedata.normalize("NFC", display_name).strip()
    if not 1 <= len(cleaned) <= MAX_DISPLAY_NAME_LENGTH or not cleaned.isprintable():
        raise BadUserInput(
            f"display name must be 1-{MAX_DISPLAY_NAME_LENGTH} printable characters",
            field="displayName",
        )
    return cleaned


async def sign_up(ctx: RequestContext, username: str, password: str, display_name: str) -> Session:
    services = ctx.services
    username = validate_username(username)
    password = validate_password(password)
    display_name = validate_display_name(display_name)
    if await services.accounts.owner_of(username) is not None:
        raise BadUserInput("username is taken", field="username")
    await enforce(ctx, "signup-ip", ctx.client_ip, services.settings.rate_signups)

    started = time.monotonic()
    profile = Profile(
        user_id=services.ids.next_id(),
        username=username,
        display_name=display_name,
        password_hash=await services.passwords.hash(password),
        created_at_ms=int(time.time() * 1000),
    )
    grace = services.settings.signup_claim_grace_seconds
    await services.jobs.collect_unclaimed_account_later(profile.user_id, username, grace)
    await services.accounts.save_profile(profile)
    await services.graph.create_user(profile.user_id, username)
    # Claiming after the collector may have run would leave a name pointing at nothing.
    if time.monotonic() - started > grace / 2:
        raise ServiceUnavailable("sign-up took too long; please retry")
    if not await services.accounts.claim_username(username, profile.user_id):
        await services.graph.delete_user(profile.user_id)
        await services.accounts.delete_profile(profile.user_id)
        raise BadUserInput("username is taken", field="username")
    return Session(token=await issue_token(ctx, profile.user_id), profile=profile)


def login_delay(failures: int, free: int, max_seconds: float) -> float:
    """Seconds an attempt on an account waits after `failures` recent failed log-ins from any
    address: none for the first `free`, then 1, 2, 4, ... up to `max_seconds`."""
    if failures < free:
        return 0.0
    return min(max_seconds, 2.0 ** min(failures - free, _FAILURES_KEPT_PAST_FREE))


async def log_in(ctx: RequestContext, username: str, password: str) -> Session:
    """Same error, and about the same time, for an unknown user and a wrong password.

    Failed attempts are limited per client address and per (username, address): past those,
    RATE_LIMITED. An account's failures from every address together only slow its attempts
    down (OWASP: throttle rather than lock out), so nobody can lock its owner out by guessing
    from many addresses. An attempt counts from before its password is checked (concurrent
    guesses cannot slip past a limit) until it succeeds."""
    services = ctx.services
    settings = services.settings
    account = username.lower()[:32]
    limited = [
        ("login-ip", ctx.client_ip, settings.rate_logins),
        ("login-account-ip", f"{account}@{ctx.client_ip}", settings.rate_logins_per_account_ip),
    ]
    counted = [(a, subject, await enforce(ctx, a, subject, rate)) for a, subject, rate in limited]
    free, window = parse_rate(settings.rate_logins_per_account)
    kept = free + _FAILURES_KEPT_PAST_FREE
    on_account = await services.rate_limits.record("login-account", account, kept, window)
    counted.append(("login-account", account, on_account))
    await asyncio.sleep(login_delay(on_account.recent - 1, free, settings.login_delay_max_seconds))

    profile = None
    if USERNAME_PATTERN.fullmatch(username) and len(password) <= MAX_PASSWORD_LENGTH:
        profile = await find_by_username(ctx, username)
    password_hash = profile.password_hash if profile else None
    if not await services.passwords.verify(password_hash, password) or profile is None:
        raise Unauthenticated(_BAD_CREDENTIALS)
    for action, subject, attempt in counted:
        await services.rate_limits.forgive(action, subject, attempt.attempt)
    return Session(token=await issue_token(ctx, profile.user_id), profile=profile)


async def issue_token(ctx: RequestContext, user_id: int) -> str:
    """A token of the user's current token version."""
    version = await ctx.services.accounts.token_version(user_id)
    return ctx.services.tokens.issue(user_id, version)


async def find_by_username(ctx: RequestContext, username: str) -> Profile | None:
    if not USERNAME_PATTERN.fullmatch(username):
        return None
    user_id = await ctx.services.accounts.owner_of(username)
    return None if user_id is None else await ctx.profiles.load(user_id)


async def viewer_profile(ctx: RequestContext) -> Profile:
    profile = await ctx.profiles.load(await ctx.viewer_id())
    if profile is None:  # a token of an account that was never completed
        raise Unauthenticated("invalid or expired token")
    return profile


async def log_out_everywhere(ctx: RequestContext) -> None:
    """Every token of the caller stops working, this one included; the caller's open sockets on
    every API process are re-checked at once and close (4401)."""
    viewer = await ctx.viewer_id()
    await ctx.services.accounts.revoke_tokens(viewer)
    await ctx.services.live.revoke(viewer)
