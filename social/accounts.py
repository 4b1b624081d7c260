"""Accounts: sign-up, log-in, who a token speaks for, and logging out everywhere.

Who owns what: the documents Redis owns the account (profile and password hash, and the username
claim); the graph owns only the user's node (id, username) and its follow edges.

A sign-up writes in an order a crash or retry cannot leave half-made:
  1. enqueue `collect_unclaimed_account`, delayed by the claim grace period (nothing written yet);
  2. save the profile under a fresh id (unreachable: no name points to it);
  3. create the graph node (idempotent MERGE on the id; still unreachable);
  4. claim the username with SET NX: the commit point. The winner's account is complete.
A crash before 4 leaves an unreachable profile and node that step 1's job deletes; a lost race
deletes them at once. A client retry simply starts over with a new id.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from auth.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from auth.tokens import Claims, InvalidToken, TokenIssuer
from graph.port import SocialGraph
from settings import parse_rate
from social import text
from social.errors import BadCredentials, InvalidInput, TryAgain
from social.ports import JobQueue
from social.throttle import Throttle
from storage.accounts import AccountStore, NoSuchAccount, Profile, PublicProfile
from storage.ids import IdGenerator
from storage.rate_limits import Verdict

_BAD_CREDENTIALS = "invalid username or password"
_BAD_TOKEN = "invalid or expired token"
# The log-in delay doubles with each failure past the free ones; this many more and it has long
# passed any sensible LOGIN_DELAY_MAX_SECONDS, so older failures need not be kept.
_FAILURES_KEPT_PAST_FREE = 32
Clock = Callable[[], float]  # seconds since the epoch
Revoke = Callable[[int], Awaitable[None]]  # tell every API process a user's tokens were revoked


@dataclass(frozen=True)
class Session:
    token: str
    profile: PublicProfile


@dataclass(frozen=True)
class LoginRates:
    """Log-in limits ("N/S"): failures per address, per (username, address), and per account
    (the account's only slow it down, by a delay doubling up to `delay_max_seconds`)."""

    per_address: str
    per_account_address: str
    per_account: str
    delay_max_seconds: float


def token_holds(claims: Claims, account_exists: bool, token_version: int) -> bool:
    """A verified token speaks for its user only while the account exists and the token is of
    the account's current version (logOutEverywhere moves the version on)."""
    return account_exists and token_version == claims.token_version


def login_delay(failures: int, free: int, max_seconds: float) -> float:
    """Seconds an attempt on an account waits after `failures` recent failed log-ins from any
    address: none for the first `free`, then 1, 2, 4, ... up to `max_seconds`."""
    if failures < free:
        return 0.0
    return min(max_seconds, 2.0 ** min(failures - free, _FAILURES_KEPT_PAST_FREE))


class Accounts:
    def __init__(
        self,
        *,
        accounts: AccountStore,
        graph: SocialGraph,
        ids: IdGenerator,
        passwords: PasswordHasher,
        tokens: TokenIssuer,
        jobs: JobQueue,
        throttle: Throttle,
        revoke: Revoke,
        clock: Clock,
        claim_grace_seconds: int,
        rate_signups: str,
        login_rates: LoginRates,
    ) -> None:
        self._accounts = accounts
        self._graph = graph
        self._ids = ids
        self._passwords = passwords
        self._tokens = tokens
        self._jobs = jobs
        self._throttle = throttle
        self._revoke = revoke
        self._clock = clock
        self._grace = claim_grace_seconds
        self._rate_signups = rate_signups
        self._login = login_rates

    async def sign_up(
        self, username: str, password: str, display_name: str, client_ip: str
    ) -> Session:
        username = text.validate_username(username)
        password = text.validate_password(password)
        display_name = text.validate_display_name(display_name)
        if await self._accounts.owner_of(username) is not None:
            raise InvalidInput("username is taken", field="username")
        await self._throttle.charge("signup-ip", client_ip, self._rate_signups)

        started = time.monotonic()
        profile = Profile(
            user_id=self._ids.next_id(),
            username=username,
            display_name=display_name,
            password_hash=await self._passwords.hash(password),
            created_at_ms=int(self._clock() * 1000),
        )
        await self._jobs.collect_unclaimed_account_later(profile.user_id, username, self._grace)
        await self._accounts.save_profile(profile)
        await self._graph.create_user(profile.user_id, username)
        # Claiming after the collector may have run would leave a name pointing at nothing.
        if time.monotonic() - started > self._grace / 2:
            raise TryAgain("sign-up took too long; please retry")
        if not await self._accounts.claim_username(username, profile.user_id):
            await self._graph.delete_user(profile.user_id)
            await self._accounts.delete_profile(profile.user_id)
            raise InvalidInput("username is taken", field="username")
        return Session(token=await self._issue_token(profile.user_id), profile=profile.public())

    async def log_in(self, username: str, password: str, client_ip: str) -> Session:
        """Same error, and about the same time, for an unknown user and a wrong password.

        Failed attempts are limited per client address and per (username, address): past
        those, TooManyAttempts. An account's failures from every address together only slow
        its attempts down (OWASP: throttle rather than lock out), so nobody can lock its owner
        out by guessing from many addresses. An attempt counts from before its password is
        checked (concurrent guesses cannot slip past a limit) until it succeeds. The delay is a
        turn: attempts on one account wait one behind the other, each the delay after the one
        before, and past a queue of `delay_max_seconds` they are refused (TooManyAttempts), so
        guesses from any number of addresses at once still reach the password check at most
        once per delay; the owner then waits at most that long, or is told when to retry."""
        rates = self._login
        account = username.lower()[:32]
        limited = [
            ("login-ip", client_ip, rates.per_address),
            ("login-account-ip", f"{account}@{client_ip}", rates.per_account_address),
        ]
        counted: list[tuple[str, str, Verdict]] = [
            (action, subject, await self._throttle.charge(action, subject, rate))
            for action, subject, rate in limited
        ]
        free, window = parse_rate(rates.per_account)
        kept = free + _FAILURES_KEPT_PAST_FREE
        on_account = await self._throttle.record("login-account", account, kept, window)
        counted.append(("login-account", account, on_account))
        delay = login_delay(on_account.recent - 1, free, rates.delay_max_seconds)
        await self._throttle.take_turn("login-account", account, delay, rates.delay_max_seconds)

        account_record = None
        if len(password) <= MAX_PASSWORD_LENGTH:
            user_id = await self.owner_of(username)
            if user_id is not None:
                account_record = await self._accounts.credentials(user_id)
        password_hash = account_record.password_hash if account_record else None
        if not await self._passwords.verify(password_hash, password) or account_record is None:
            raise BadCredentials(_BAD_CREDENTIALS)
        for action, subject, attempt in counted:
            await self._throttle.forgive(action, subject, attempt.attempt)
        token = await self._issue_token(account_record.user_id)
        return Session(token=token, profile=account_record.public())

    async def _issue_token(self, user_id: int) -> str:
        """A token of the user's current token version."""
        version = await self._accounts.token_version(user_id)
        return self._tokens.issue(user_id, version)

    async def owner_of(self, username: str) -> int | None:
        if not text.is_username(username):
            return None
        return await self._accounts.owner_of(username)

    def claims(self, token: str | None) -> Claims:
        """The token's verified claims (signature and expiry), or BadCredentials."""
        if token is None:
            raise BadCredentials("authentication required: send 'Authorization: Bearer <token>'")
        try:
            return self._tokens.verify(token)
        except InvalidToken:
            raise BadCredentials(_BAD_TOKEN) from None

    async def authenticate(self, token: str | None) -> int:
        """The id of the user `token` speaks for, or BadCredentials: it must be well signed,
        unexpired, of an existing account, and of the account's current token version."""
        claims = self.claims(token)
        try:
            version = await self._accounts.token_version(claims.user_id)
        except NoSuchAccount:
            raise BadCredentials(_BAD_TOKEN) from None
        self.check_token(claims, True, version)
        return claims.user_id

    @staticmethod
    def check_token(claims: Claims, account_exists: bool, token_version: int) -> None:
        """BadCredentials unless the token holds for this account state (read elsewhere, e.g.
        in the same round trip as a page's documents)."""
        if not token_holds(claims, account_exists, token_version):
            raise BadCredentials(_BAD_TOKEN)

    async def log_out_everywhere(self, viewer: int) -> None:
        """Every token of the viewer stops working; their open sockets on every API process are
        re-checked at once and close."""
        await self._accounts.revoke_tokens(viewer)
        await self._revoke(viewer)
