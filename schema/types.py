"""GraphQL object types. Fields map domain data to the schema and delegate I/O to resolvers/."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from graph.port import EdgeCursor, EdgePage
from resolvers import engagement, following, tweets
from resolvers.context import RequestContext
from resolvers.engagement import NOT_LOADABLE, node_engagement
from resolvers.ids import (
    edge_cursor,
    like_cursor,
    media_global_id,
    parse_edge_cursor,
    parse_like_cursor,
    parse_timeline_cursor,
    timeline_cursor,
    tweet_global_id,
    user_global_id,
)
from storage.accounts import PublicProfile
from storage.tweet_cache import TweetRef
from storage.tweets import MediaItem, Tweet

DEFAULT_PAGE_SIZE = 20
# TweetNode's engagement fields and the names of the values that fill them
ENGAGEMENT_FIELDS = {
    "reply_count": "replies",
    "retweet_count": "retweets",
    "quote_count": "quotes",
    "like_count": "likes",
    "viewer_has_liked": "liked",
    "viewer_has_retweeted": "retweeted",
}


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
    """Plain fields are filled when the object is made (no resolver runs for them); the
    counts, follow state and lists are fetched, batched, only when asked for."""

    id: strawberry.ID
    username: str
    display_name: str
    created_at: datetime
    profile: strawberry.Private[PublicProfile]

    @classmethod
    def of(cls, profile: PublicProfile) -> User:
        return cls(
            id=strawberry.ID(user_global_id(profile.user_id)),
            username=profile.username,
            display_name=profile.display_name,
            created_at=datetime.fromtimestamp(profile.created_at_ms / 1000, tz=UTC),
            profile=profile,
        )

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
        await prefetch_engagement(info, found)
        author = User.of(self.profile)
        ctx = info.context
        edges = [
            TweetEdge(
                cursor=timeline_cursor(t.tweet_id),
                node=TweetNode.of(t, author, node_engagement(ctx, (t.author_id, t.tweet_id))),
            )
            for t in found
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

    @strawberry.field(
        description="The tweets this user liked, most recent like first (deleted ones left out)."
    )
    async def likes(
        self,
        info: Info[RequestContext, None],
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> TweetConnection:
        page = await engagement.likes(
            info.context, self.profile.user_id, first, parse_like_cursor(after)
        )
        nodes = await tweet_nodes(info.context, [tweet for _, tweet in page.items], info)
        edges = [
            TweetEdge(cursor=like_cursor(cursor), node=node)
            for (cursor, _), node in zip(page.items, nodes, strict=True)
        ]
        end = like_cursor(page.end_cursor) if page.end_cursor else None
        return TweetConnection(
            edges=edges, page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=end)
        )


@strawberry.type(description="An image attached to a tweet, served through the CDN.")
class Media:
    id: strawberry.ID
    url: str
    width: int
    height: int
    content_type: str

    @classmethod
    def of(cls, item: MediaItem, author_id: int) -> Media:
        return cls(
            id=strawberry.ID(media_global_id(author_id, item.media_id)),
            url=item.url,
            width=item.width,
            height=item.height,
            content_type=item.content_type,
        )


@strawberry.type(name="Tweet")
class TweetNode:
    """Every field is filled when the object is made, its author included (the callers have
    the profiles already, fetched in one batch per page): no resolver runs per tweet."""

    id: strawberry.ID
    text: str
    created_at: datetime
    mentions: list[str] = strawberry.field(
        description="Usernames mentioned with @, in order, each once."
    )
    hashtags: list[str] = strawberry.field(
        description="Hashtags without the #, in order, each once."
    )
    media: list[Media]
    author: User

    @classmethod
    def of(
        cls, tweet: Tweet, author: User, engagement: dict[str, object] | None = None
    ) -> TweetNode:
        """`engagement`: resolvers.engagement.node_engagement's values (tweet_nodes passes
        them); without it, selecting a count fails loudly."""
        values = engagement or {}
        engagement_values: dict[str, Any] = {
            field: values.get(name, NOT_LOADABLE) for field, name in ENGAGEMENT_FIELDS.items()
        }
        return cls(
            id=strawberry.ID(tweet_global_id(tweet.author_id, tweet.tweet_id)),
            text=tweet.text,
            created_at=datetime.fromtimestamp(tweet.created_at_ms / 1000, tz=UTC),
            mentions=list(tweet.mentions),
            hashtags=list(tweet.hashtags),
            media=[Media.of(item, tweet.author_id) for item in tweet.media],
            author=author,
            ref=(tweet.author_id, tweet.tweet_id),
            **engagement_values,
        )

    # Engagement (issue 12): plain fields (no resolver runs per tweet), filled by `of` with
    # values a page prefetched or with awaitables that load them only if selected.
    ref: strawberry.Private[TweetRef]
    reply_count: int = strawberry.field(description="How many replies this tweet has.")
    retweet_count: int = strawberry.field(
        description="How many times this tweet was retweeted (quotes not included)."
    )
    quote_count: int = strawberry.field(description="How many tweets quote this one.")
    like_count: int = strawberry.field(description="How many users like this tweet.")
    viewer_has_liked: bool = strawberry.field(
        description="Whether the caller likes this tweet; false when anonymous."
    )
    viewer_has_retweeted: bool = strawberry.field(
        description="Whether the caller retweeted this tweet; false when anonymous."
    )


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
            node=User.of(node),
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


@strawberry.type(description="The engagement counts of a watched tweet, as they now are.")
class TweetCountsUpdate:
    tweet_id: strawberry.ID = strawberry.field(description="The tweet these counts are of.")
    reply_count: int = strawberry.field(description="As Tweet.replyCount.")
    retweet_count: int = strawberry.field(description="As Tweet.retweetCount.")
    quote_count: int = strawberry.field(description="As Tweet.quoteCount.")
    like_count: int = strawberry.field(description="As Tweet.likeCount.")


async def tweet_nodes(
    ctx: RequestContext, found: list[Tweet], page: Info[RequestContext, None] | None = None
) -> list[TweetNode]:
    """Nodes for tweets by any authors, the authors' profiles fetched in one batch (from this
    request's loader, which a page read may have filled already). With `page` (the list
    field's info), the counts and viewer state it selects are loaded for all of them first."""
    if page is not None:
        await prefetch_engagement(page, found)
    profiles = await ctx.profiles.load_many([t.author_id for t in found])
    nodes = []
    for tweet, profile in zip(found, profiles, strict=True):
        assert profile is not None  # accounts are never deleted while their tweets exist
        engagement = node_engagement(ctx, (tweet.author_id, tweet.tweet_id))
        nodes.append(TweetNode.of(tweet, User.of(profile), engagement))
    return nodes


def selected_names(info: Info[RequestContext, None]) -> set[str]:
    """Every field name selected anywhere under the field being resolved (fragments included)."""
    names: set[str] = set()
    pending = list(info.selected_fields)
    while pending:
        selection = pending.pop()
        if isinstance(selection, SelectedField):
            names.add(selection.name)
        pending.extend(selection.selections)
    return names


async def prefetch_engagement(info: Info[RequestContext, None], found: list[Tweet]) -> None:
    """A page's counts and viewer state in one batch each, if the page's selection asks."""
    refs = [(t.author_id, t.tweet_id) for t in found]
    await engagement.prefetch(info.context, refs, selected_names(info))
