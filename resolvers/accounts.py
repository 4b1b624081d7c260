"""Sign-up, log-in, log-out-everywhere and user lookup (rules: `social.accounts`)."""

from __future__ import annotations

from resolvers.context import RequestContext
from social.accounts import Session
from social.errors import BadCredentials
from storage.accounts import PublicProfile


async def sign_up(ctx: RequestContext, username: str, password: str, display_name: str) -> Session:
    return await ctx.services.accounts.sign_up(username, password, display_name, ctx.client_ip)


async def log_in(ctx: RequestContext, username: str, password: str) -> Session:
    return await ctx.services.accounts.log_in(username, password, ctx.client_ip)


async def find_by_username(ctx: RequestContext, username: str) -> PublicProfile | None:
    user_id = await ctx.services.accounts.owner_of(username)
    return None if user_id is None else await ctx.profiles.load(user_id)


async def viewer_profile(ctx: RequestContext) -> PublicProfile:
    profile = await ctx.profiles.load(await ctx.viewer_id())
    if profile is None:  # a token of an account that was never completed
        raise BadCredentials("invalid or expired token")
    return profile


async def log_out_everywhere(ctx: RequestContext) -> None:
    await ctx.services.accounts.log_out_everywhere(await ctx.viewer_id())
