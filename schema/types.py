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
    parse_reply_cursor,
    parse_timeline_cursor,
    reply_cursor,
    timeline_cursor,
    tweet_global_id,
    user_global_id,
)
from storage.accounts import PublicProfile
from storage.media import MediaState, MediaStatus
from storage.tweet_cache import TweetRef
from storage.tweets import MediaItem, Tweet, TweetId

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

    @strawberry.field(
        description="This user's tweets, newest first; their retweets show the original, "
        "with `retweetedBy` on the edge."
    )
    async def tweets(
        self,
        info: Info[RequestContext, None],
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> TweetConnection:
        found, page = await tweets.timeline(
            info.context, self.profile.user_id, first, parse_timeline_cursor(after)
        )
        nodes = await tweet_nodes(info.context, [entry.tweet for _, entry in found], info)
        retweeter = User.of(self.profile)
        edges = [
            TweetEdge(
                cursor=timeline_cursor(entry_id),
                node=node,
                retweeted_by=None if entry.retweeted_by is None else retweeter,
            )
            for (entry_id, entry), node in zip(found, nodes, strict=True)
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


@strawberry.interface(
    description="An image or a video attached to a tweet, served through the CDN."
)
class Media:
    id: strawberry.ID
    url: str = strawberry.field(description="The clean copy (no metadata), through the CDN.")
    width: int = strawberry.field(
        description="Pixels across as displayed, upright: an image's EXIF orientation and a "
        "video's display rotation are applied (a phone's portrait video, stored as landscape "
        "frames and a rotation, is narrower than it is tall)."
    )
    height: int = strawberry.field(description="Pixels down as displayed (see width).")
    content_type: str

    @staticmethod
    def of(item: MediaItem, author_id: int) -> Media:
        """An Image, or a Video when the item has a poster."""
        media_id = strawberry.ID(media_global_id(author_id, item.media_id))
        if item.poster_url is not None:
            return Video(
                id=media_id,
                url=item.url,
                width=item.width,
                height=item.height,
                content_type=item.content_type,
                poster_url=item.poster_url,
                duration_ms=item.duration_ms or 0,
            )
        return Image(
            id=media_id,
            url=item.url,
            width=item.width,
            height=item.height,
            content_type=item.content_type,
        )


@strawberry.type(description="An image attached to a tweet, served through the CDN.")
class Image(Media):
    pass


@strawberry.type(
    description="A video attached to a tweet: H.264/AAC MP4 with its index first (plays and "
    "seeks while it downloads; Range requests are served), and a poster image."
)
class Video(Media):
    poster_url: str = strawberry.field(description="A JPEG of a frame a little into the video.")
    duration_ms: int = strawberry.field(description="Its length in milliseconds.")


strawberry.enum(
    MediaState,
    name="MediaState",
    description="Where an upload is: PENDING (uploading, or completed and queued), PROCESSING, "
    "then READY (attachable) or FAILED (see reason; its files are deleted).",
)


@strawberry.type(
    description="An upload's processing state (videos are processed by a worker after "
    "completeMediaUpload; images when a tweet attaches them), as Twitter's processing_info."
)
class MediaProcessing:
    id: strawberry.ID
    state: MediaState
    reason: str | None = strawberry.field(description="Why it FAILED; null otherwise.")
    attempts: int = strawberry.field(
        description="Processing runs started (a worker that dies mid-run costs one)."
    )
    media: Media | None = strawberry.field(description="The published media, once READY.")

    @classmethod
    def of(cls, status: MediaStatus, owner_id: int) -> MediaProcessing:
        return cls(
            id=strawberry.ID(media_global_id(owner_id, status.media_id)),
            state=status.state,
            reason=status.reason,
            attempts=status.attempts,
            media=None if status.item is None else Media.of(status.item, owner_id),
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
        cls,
        tweet: Tweet,
        author: User,
        engagement: dict[str, object] | None = None,
        *,
        embedded: bool = False,
    ) -> TweetNode:
        """`engagement`: resolvers.engagement.node_engagement's values (tweet_nodes passes
        them); without it, selecting a count fails loudly. `embedded`: shown inside another
        tweet, so it embeds no further."""
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
            source=tweet,
            embedded=embedded,
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

    # Conversations, quotes and retweets (issue 12): linked tweets load in one batch per level.
    source: strawberry.Private[Tweet | None] = None
    embedded: strawberry.Private[bool] = False  # shown inside another: it embeds nothing more

    @strawberry.field(description="The tweet this one answers; null if it is not a reply.")
    async def in_reply_to(self, info: Info[RequestContext, None]) -> TweetReference | None:
        assert self.source is not None
        return await tweet_reference(info.context, self.source.in_reply_to, self.embedded)

    @strawberry.field(
        description="The tweet that started this tweet's conversation (the root of its "
        "thread): this tweet itself unless it is a reply. Its id is the conversation's id."
    )
    async def conversation(self, info: Info[RequestContext, None]) -> TweetReference:
        assert self.source is not None
        root = self.source.conversation or self.source.in_reply_to
        if root is None:
            return TweetReference(id=self.id, deleted=False, tweet=self)
        found = await tweet_reference(info.context, root, self.embedded)
        assert found is not None
        return found

    @strawberry.field(description="The tweet this one quotes; null if it quotes none.")
    async def quote_of(self, info: Info[RequestContext, None]) -> TweetReference | None:
        assert self.source is not None
        return await tweet_reference(info.context, self.source.quote_of, self.embedded)

    @strawberry.field(
        description="Direct replies to this tweet, oldest first (as a conversation reads); "
        "deleted replies leave the list."
    )
    async def replies(
        self,
        info: Info[RequestContext, None],
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> TweetConnection:
        assert self.source is not None
        parent = (self.source.author_id, self.source.tweet_id)
        found, more, end = await tweets.replies(
            info.context, parent, first, parse_reply_cursor(after)
        )
        nodes = await tweet_nodes(info.context, found, info)
        edges = [
            TweetEdge(cursor=reply_cursor((t.author_id, t.tweet_id)), node=node)
            for t, node in zip(found, nodes, strict=True)
        ]
        end_cursor = None if end is None else reply_cursor(end)
        return TweetConnection(
            edges=edges, page_info=PageInfo(has_next_page=more, end_cursor=end_cursor)
        )


@strawberry.type(
    description="A tweet that another one points at: the tweet it answers, quotes, or whose "
    "conversation it belongs to. A deleted tweet keeps its place: `deleted` is true and "
    "`tweet` null."
)
class TweetReference:
    id: strawberry.ID = strawberry.field(
        description="The id of the tweet pointed at, kept when it is deleted."
    )
    deleted: bool = strawberry.field(description="Whether that tweet was deleted (or is gone).")
    tweet: TweetNode | None = strawberry.field(
        description="The tweet pointed at; null when deleted, and inside an embedded tweet "
        "(embedding stops at one level: a quoted tweet shows its own quote as an id only)."
    )


async def tweet_reference(
    ctx: RequestContext, ref: TweetId | None, embedded: bool
) -> TweetReference | None:
    """The reference to `ref` from a tweet (`embedded`: shown inside another tweet)."""
    if ref is None:
        return None
    found = await tweets.linked_tweet(ctx, ref)
    node = None
    if found is not None and not embedded:
        profile = await ctx.profiles.load(found.author_id)
        assert profile is not None  # accounts are never deleted while their tweets exist
        engagement = node_engagement(ctx, (found.author_id, found.tweet_id))
        node = TweetNode.of(found, User.of(profile), engagement, embedded=True)
    return TweetReference(
        id=strawberry.ID(tweet_global_id(*ref)), deleted=found is None, tweet=node
    )


@strawberry.type
class TweetEdge:
    cursor: str
    node: TweetNode
    retweeted_by: User | None = strawberry.field(
        default=None,
        description="Who retweeted `node` into this feed or timeline; null for the tweet itself.",
    )


@strawberry.type
class TweetConnection:
    edges: list[TweetEdge]
    page_info: PageInfo


@strawberry.type
class MediaUpload:
    id: strawberry.ID = strawberry.field(description="Pass it to createTweet's mediaIds.")
    upload_url: str = strawberry.field(
        description="PUT the file's bytes here, with the declared Content-Type. With "
        "partCount: part 1's URL (get the others from mediaUploadPartUrl)."
    )
    expires_in_seconds: int
    part_size: int | None = strawberry.field(
        default=None,
        description="A multipart upload (a large video): PUT bytes [(n-1)*partSize, "
        "n*partSize) as part n; null for one PUT.",
    )
    part_count: int | None = strawberry.field(
        default=None, description="How many parts a multipart upload has; null for one PUT."
    )


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
    retweeted_by: User | None = strawberry.field(
        default=None,
        description="Who retweeted `tweet` into your feed; null for the tweet itself.",
    )


@strawberry.type(
    description="A tweet, or one entry of it, that left your feed: remove it from your view."
)
class TweetDeleted:
    tweet_id: strawberry.ID
    retweeted_by: User | None = strawberry.field(
        default=None,
        description="Set when only the entry of `tweetId` retweeted by this user left: remove "
        "that entry (the retweet was undone, or another entry of the tweet shows it now: that "
        "one follows as a FeedTweet, as a re-read of the feed shows it). Null: `tweetId` "
        "itself was deleted (with its retweets).",
    )


FeedUpdate = Annotated[FeedTweet | TweetDeleted, strawberry.union("FeedUpdate")]


async def retweeted_by(ctx: RequestContext, user_ids: list[int | None]) -> list[User | None]:
    """The retweeters of feed items (None for an original), from the request's profile loader
    (which the page read primed with them: the retweets' authors)."""
    profiles = await ctx.profiles.load_many([u for u in user_ids if u is not None])
    users = iter(profiles)
    found = [None if u is None else next(users) for u in user_ids]
    return [None if p is None else User.of(p) for p in found]


@strawberry.type(
    description="The engagement counts of a watched tweet, as they now are; or, once, that it "
    "was deleted."
)
class TweetCountsUpdate:
    tweet_id: strawberry.ID = strawberry.field(description="The tweet these counts are of.")
    reply_count: int = strawberry.field(description="As Tweet.replyCount.")
    retweet_count: int = strawberry.field(description="As Tweet.retweetCount.")
    quote_count: int = strawberry.field(description="As Tweet.quoteCount.")
    like_count: int = strawberry.field(description="As Tweet.likeCount.")
    deleted: bool = strawberry.field(
        default=False,
        description="True: the tweet was deleted (remove it from your view). This is the last "
        "update of it, sent once, never held back, with the counts it ended with; it is no "
        "longer watched. False on every other update.",
    )


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
