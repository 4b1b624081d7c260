"""GraphQL object types. Fields map domain data to the schema and delegate I/O to resolvers/."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import strawberry
from strawberry.types import Info

from graph.port import EdgeCursor, EdgePage
from resolvers import social
from resolvers.context import RequestContext
from schema.ids import edge_cursor, parse_edge_cursor, user_global_id
from storage.accounts import Profile

DEFAULT_PAGE_SIZE = 20


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class UserEdge:
    cursor: str
    node: User
    followed_at: datetime = strawberry.field(description="When this follow was made.")


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo


@strawberry.type(description="An account. Counts are kept up to date by every follow/unfollow.")
class User:
    profile: strawberry.Private[Profile]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(user_global_id(self.profile.user_id))

    @strawberry.field
    def username(self) -> str:
        return self.profile.username

    @strawberry.field
    def display_name(self) -> str:
        return self.profile.display_name

    @strawberry.field
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.profile.created_at_ms / 1000, tz=UTC)

    @strawberry.field
    async def followers_count(self, info: Info[RequestContext, None]) -> int:
        return (await info.context.counts.load(self.profile.user_id)).followers

    @strawberry.field
    async def following_count(self, info: Info[RequestContext, None]) -> int:
        return (await info.context.counts.load(self.profile.user_id)).following

    @strawberry.field(description="Whether the caller follows this user; false when anonymous.")
    async def viewer_is_following(self, info: Info[RequestContext, None]) -> bool:
        return await social.viewer_is_following(info.context, self.profile.user_id)

    @strawberry.field(description="Who follows this user, most recent follow first.")
    async def followers(
        self,
        info: Info[RequestContext, None],
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> UserConnection:
        return await user_connection(info.context, social.followers, self.profile, first, after)

    @strawberry.field(description="Whom this user follows, most recent follow first.")
    async def following(
        self,
        info: Info[RequestContext, None],
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> UserConnection:
        return await user_connection(info.context, social.following, self.profile, first, after)


@strawberry.type
class AuthPayload:
    token: str = strawberry.field(description="Send as 'Authorization: Bearer <token>'.")
    user: User


@strawberry.type
class Suggestion:
    user: User
    mutual_followers: int = strawberry.field(
        description="How many of the accounts you follow follow this one."
    )


async def user_connection(
    ctx: RequestContext,
    fetch: Callable[[RequestContext, int, int, EdgeCursor | None], Awaitable[EdgePage]],
    profile: Profile,
    first: int,
    after: str | None,
) -> UserConnection:
    """Fetch a page of follow edges around `profile` and hydrate it with profiles in one batch."""
    page = await fetch(ctx, profile.user_id, first, parse_edge_cursor(after))
    profiles = await ctx.profiles.load_many([edge.user_id for edge in page.edges])
    edges = [
        UserEdge(
            cursor=edge_cursor(edge.cursor),
            node=User(profile=node),
            followed_at=datetime.fromtimestamp(edge.followed_at_ms / 1000, tz=UTC),
        )
        for edge, node in zip(page.edges, profiles, strict=True)
        if node is not None
    ]
    end_cursor = edge_cursor(page.edges[-1].cursor) if page.edges else None
    return UserConnection(
        edges=edges, page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=end_cursor)
    )
