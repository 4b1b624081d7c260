"""GraphQL object types. Fields map domain data to the schema and delegate I/O to resolvers/."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from graph.port import EdgeCursor, EdgePage
from resolvers import following, tweets
from resolvers.context import RequestContext
from resolvers.ids import (
    edge_cursor,
    media_global_id,
    parse_edge_cursor,
    parse_timeline_cursor,
    timeline_cursor,
    tweet_global_id,
    user_global_id,
)
from storage.accounts import PublicProfile
from storage.tweets import MediaItem, Tweet

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
    profile: strawberry.Private[PublicProfile]

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
        return await following.viewer_is_following(info.context, self.profile.user_id)

    @strawberry.field(description="This user's tweets, newest first.")
    async def tweets(
        self,
        info: Info[RequestContext, None],
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> TweetConnection:
        found, page = await tweets.timeline(
            info.context, self.profile.user_id, first, parse_timeline_cursor(after)
        )
        edges = [
            TweetEdge(cursor=timeline_cursor(t.tweet_id), node=TweetNode(tweet=t)) for t in found
        ]
        end_cursor = timeline_cursor(page.tweet_ids[-1]) if page.tweet_ids else None
        return TweetConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=end_cursor),
        )

    @strawberry.field(description="Who follows this user, most recent follow first.")
    async def followers(
        self,
        info: Info[RequestContext, None],
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> UserConnection:
        return await user_connection(info.context, following.followers, self.profile, first, after)

    @strawberry.field(description="Whom this user follows, most recent follow first.")
    async def following(
        self,
        info: Info[RequestContext, None],
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> UserConnection:
        return await user_connection(info.context, following.following, self.profile, first, after)


@strawberry.type(description="An image attached to a tweet, served through the CDN.")
class Media:
    item: strawberry.Private[MediaItem]
    author_id: strawberry.Private[int]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(media_global_id(self.author_id, self.item.media_id))

    @strawberry.field
    def url(self) -> str:
        return self.item.url

    @strawberry.field
    def width(self) -> int:
        return self.item.width

    @strawberry.field
    def height(self) -> int:
        return self.item.height

    @strawberry.field
    def content_type(self) -> str:
        return self.item.content_type


@strawberry.type(name="Tweet")
class TweetNode:
    tweet: strawberry.Private[Tweet]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(tweet_global_id(self.tweet.author_id, self.tweet.tweet_id))

    @strawberry.field
    def text(self) -> str:
        return self.tweet.text

    @strawberry.field
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.tweet.created_at_ms / 1000, tz=UTC)

    @strawberry.field(description="Usernames mentioned with @, in order, each once.")
    def mentions(self) -> list[str]:
        return list(self.tweet.mentions)

    @strawberry.field(description="Hashtags without the #, in order, each once.")
    def hashtags(self) -> list[str]:
        return list(self.tweet.hashtags)

    @strawberry.field
    def media(self) -> list[Media]:
        return [Media(item=item, author_id=self.tweet.author_id) for item in self.tweet.media]

    @strawberry.field
    async def author(self, info: Info[RequestContext, None]) -> User:
        profile = await info.context.profiles.load(self.tweet.author_id)
        assert profile is not None  # accounts are never deleted while their tweets exist
        return User(profile=profile)


@strawberry.type
class TweetEdge:
    cursor: str
    node: TweetNode


@strawberry.type
class TweetConnection:
    edges: list[TweetEdge]
    page_info: PageInfo


@strawberry.type
class MediaUpload:
    id: strawberry.ID = strawberry.field(description="Pass it to createTweet's mediaIds.")
    upload_url: str = strawberry.field(
        description="PUT the file's bytes here, with the declared Content-Type."
    )
    expires_in_seconds: int


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
    profile: PublicProfile,
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


@strawberry.type(description="A tweet that just entered your feed.")
class FeedTweet:
    cursor: str = strawberry.field(description="Resubscribe with this to miss nothing.")
    tweet: TweetNode


@strawberry.type(description="A tweet that was deleted: remove it from your view.")
class TweetDeleted:
    tweet_id: strawberry.ID


FeedUpdate = Annotated[FeedTweet | TweetDeleted, strawberry.union("FeedUpdate")]
