"""The Query and Mutation roots."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from resolvers import accounts, engagement, feed, following, live, media, tweets
from resolvers.context import RequestContext
from resolvers.errors import NotFound
from resolvers.ids import (
    feed_cursor,
    media_global_id,
    parse_feed_cursor,
    parse_media_global_id,
    parse_tweet_global_id,
    parse_user_global_id,
    tweet_global_id,
)
from schema.types import (
    DEFAULT_PAGE_SIZE,
    AuthPayload,
    FeedTweet,
    FeedUpdate,
    Image,
    MediaProcessing,
    MediaUpload,
    PageInfo,
    Suggestion,
    TweetConnection,
    TweetCountsUpdate,
    TweetDeleted,
    TweetEdge,
    TweetNode,
    User,
    Video,
    retweeted_by,
    selected_names,
    tweet_nodes,
)

MEDIA_TYPES = [Image, Video]  # the Media interface's implementations, for the schema

Ctx = Info[RequestContext, None]


async def _user_by_id(ctx: RequestContext, user_id: int) -> User:
    profile = await ctx.profiles.load(user_id)
    if profile is None:
        raise NotFound("no such user")
    return User.of(profile)


@strawberry.type
class Query:
    @strawberry.field(description="The authenticated caller.")
    async def viewer(self, info: Ctx) -> User:
        return User.of(await accounts.viewer_profile(info.context))

    @strawberry.field(description="Anyone, by username (any case); null if there is no such user.")
    async def user(self, info: Ctx, username: str) -> User | None:
        profile = await accounts.find_by_username(info.context, username)
        return None if profile is None else User.of(profile)

    @strawberry.field(
        description="Your home feed: your tweets and those of everyone you follow, newest first."
    )
    async def feed(
        self, info: Ctx, first: int = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> TweetConnection:
        if selected_names(info) & engagement.VIEWER_FIELDS:
            info.context.pages_show_viewer_state = True  # read with the page, not after it
        result = await feed.read_feed(info.context, first, parse_feed_cursor(after))
        nodes = await tweet_nodes(info.context, [item.tweet for item in result.items], info)
        retweeters = await retweeted_by(info.context, [item.retweeted_by for item in result.items])
        edges = [
            TweetEdge(cursor=feed_cursor(item.ref), node=node, retweeted_by=retweeter)
            for item, node, retweeter in zip(result.items, nodes, retweeters, strict=True)
        ]
        end = feed_cursor(result.end_cursor) if result.end_cursor else None
        return TweetConnection(
            edges=edges, page_info=PageInfo(has_next_page=result.has_next_page, end_cursor=end)
        )

    @strawberry.field(
        description="A tweet by id (a retweet's id gives its original); null if there is none, "
        "it was deleted or the retweet was undone."
    )
    async def tweet(self, info: Ctx, id: strawberry.ID) -> TweetNode | None:
        found = await tweets.visible_tweet(info.context, *parse_tweet_global_id(id))
        return None if found is None else (await tweet_nodes(info.context, [found]))[0]

    @strawberry.field(description="Your upload's processing state (only the uploader may read it).")
    async def media(self, info: Ctx, id: strawberry.ID) -> MediaProcessing:
        status = await media.media_status(info.context, parse_media_global_id(id))
        return MediaProcessing.of(status, await info.context.viewer_id())

    @strawberry.field(
        description="Accounts followed by the people you follow, ranked by how many of them do."
    )
    async def who_to_follow(self, info: Ctx, first: int = 10) -> list[Suggestion]:
        suggestions = await following.who_to_follow(info.context, first)
        profiles = await info.context.profiles.load_many([s.user_id for s in suggestions])
        return [
            Suggestion(user=User.of(profile), mutual_followers=s.mutual_followers)
            for s, profile in zip(suggestions, profiles, strict=True)
            if profile is not None
        ]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create an account; returns a token and the new user.")
    async def sign_up(
        self, info: Ctx, username: str, password: str, display_name: str
    ) -> AuthPayload:
        session = await accounts.sign_up(info.context, username, password, display_name)
        return AuthPayload(token=session.token, user=User.of(session.profile))

    @strawberry.mutation(description="Exchange a username and password for a token.")
    async def log_in(self, info: Ctx, username: str, password: str) -> AuthPayload:
        session = await accounts.log_in(info.context, username, password)
        return AuthPayload(token=session.token, user=User.of(session.profile))

    @strawberry.mutation(
        description="Invalidate all of your tokens, this one included (log in again after)."
    )
    async def log_out_everywhere(self, info: Ctx) -> bool:
        await accounts.log_out_everywhere(info.context)
        return True

    @strawberry.mutation(description="Follow a user (idempotent); returns that user.")
    async def follow(self, info: Ctx, user_id: strawberry.ID) -> User:
        followee = await following.follow(info.context, parse_user_global_id(user_id))
        return await _user_by_id(info.context, followee)

    @strawberry.mutation(description="Stop following a user (idempotent); returns that user.")
    async def unfollow(self, info: Ctx, user_id: strawberry.ID) -> User:
        followee = await following.unfollow(info.context, parse_user_global_id(user_id))
        return await _user_by_id(info.context, followee)

    @strawberry.mutation(
        description="Start an upload (image/jpeg, image/png, image/gif, image/webp; video/mp4, "
        "video/quicktime, video/webm): returns a media id and a URL to PUT the file to (a "
        "large video: parts). A video then needs completeMediaUpload."
    )
    async def create_media_upload(
        self, info: Ctx, content_type: str, byte_size: int
    ) -> MediaUpload:
        upload = await media.create_media_upload(info.context, content_type, byte_size)
        viewer = await info.context.viewer_id()
        return MediaUpload(
            id=strawberry.ID(media_global_id(viewer, upload.media_id)),
            upload_url=upload.upload_url,
            expires_in_seconds=upload.expires_in_seconds,
            part_size=upload.part_size,
            part_count=upload.part_count,
        )

    @strawberry.mutation(
        description="A fresh URL to PUT part `partNumber` (1-partCount) of a multipart upload "
        "to: for each part, and again for a part whose upload failed."
    )
    async def media_upload_part_url(self, info: Ctx, id: strawberry.ID, part_number: int) -> str:
        return await media.upload_part_url(info.context, parse_media_global_id(id), part_number)

    @strawberry.mutation(
        description="Say a video's bytes are uploaded (all parts, for a multipart upload): it "
        "is queued for processing. Watch its state with media(id) or mediaProcessing(id); "
        "repeating it is harmless."
    )
    async def complete_media_upload(self, info: Ctx, id: strawberry.ID) -> MediaProcessing:
        status = await media.complete_media_upload(info.context, parse_media_global_id(id))
        return MediaProcessing.of(status, await info.context.viewer_id())

    @strawberry.mutation(
        description="Post a tweet: 1-280 characters, up to 4 uploaded images or 1 READY video. "
        "The same idempotencyKey again with the same arguments returns the first tweet instead "
        "of posting twice; with different ones it is refused (BAD_USER_INPUT). With "
        "inReplyTo it answers that tweet (joining its conversation); with quoteOf it quotes "
        "one; both at once is a quote-reply. Either must be a tweet that is not deleted "
        "(NOT_FOUND otherwise, nothing posted)."
    )
    async def create_tweet(
        self,
        info: Ctx,
        text: str,
        media_ids: list[strawberry.ID] | None = None,
        idempotency_key: str | None = None,
        in_reply_to: strawberry.ID | None = None,
        quote_of: strawberry.ID | None = None,
    ) -> TweetNode:
        refs = [parse_media_global_id(m) for m in media_ids or []]
        parent = None if in_reply_to is None else parse_tweet_global_id(in_reply_to)
        quoted = None if quote_of is None else parse_tweet_global_id(quote_of)
        tweet = await tweets.create_tweet(info.context, text, refs, idempotency_key, parent, quoted)
        return (await tweet_nodes(info.context, [tweet]))[0]

    @strawberry.mutation(
        description="Retweet a tweet (a retweet's id retweets its original); idempotent. "
        "Returns the original."
    )
    async def retweet(self, info: Ctx, tweet_id: strawberry.ID) -> TweetNode:
        original = await tweets.retweet(info.context, parse_tweet_global_id(tweet_id))
        return (await tweet_nodes(info.context, [original]))[0]

    @strawberry.mutation(
        description="Undo your retweet of a tweet (idempotent); returns the original's id."
    )
    async def undo_retweet(self, info: Ctx, tweet_id: strawberry.ID) -> strawberry.ID:
        original = await tweets.undo_retweet(info.context, parse_tweet_global_id(tweet_id))
        return strawberry.ID(tweet_global_id(*original))

    @strawberry.mutation(description="Delete your tweet (idempotent); returns its id.")
    async def delete_tweet(self, info: Ctx, id: strawberry.ID) -> strawberry.ID:
        await tweets.delete_tweet(info.context, *parse_tweet_global_id(id))
        return id

    # Engagement (issue 12): likes.
    @strawberry.mutation(description="Like a tweet (idempotent: liking twice counts once).")
    async def like(self, info: Ctx, tweet_id: strawberry.ID) -> TweetNode:
        tweet = await engagement.like(info.context, *parse_tweet_global_id(tweet_id))
        return (await tweet_nodes(info.context, [tweet]))[0]

    @strawberry.mutation(description="Stop liking a tweet (idempotent); returns the tweet.")
    async def unlike(self, info: Ctx, tweet_id: strawberry.ID) -> TweetNode:
        tweet = await engagement.unlike(info.context, *parse_tweet_global_id(tweet_id))
        return (await tweet_nodes(info.context, [tweet]))[0]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="New tweets in your feed and deletions, live. Authenticate in "
        'connection_init: {"Authorization": "Bearer <token>"}. With `after` (a feed '
        "cursor), what the feed gained since is replayed first."
    )
    async def feed_updates(
        self, info: Ctx, after: str | None = None
    ) -> AsyncGenerator[FeedUpdate, None]:
        async for update in live.feed_updates(info.context, parse_feed_cursor(after)):
            if isinstance(update, live.Deleted):
                ref, original = update.ref, update.original
                shown = (ref.author_id, ref.tweet_id) if original is None else original
                retweeter = None if original is None else ref.author_id
                [by] = await retweeted_by(info.context, [retweeter])
                yield TweetDeleted(tweet_id=strawberry.ID(tweet_global_id(*shown)), retweeted_by=by)
            else:
                [node] = await tweet_nodes(info.context, [update.tweet])
                [by] = await retweeted_by(info.context, [update.retweeted_by])
                yield FeedTweet(cursor=feed_cursor(update.ref), tweet=node, retweeted_by=by)

    @strawberry.subscription(
        description="Your upload's processing state now, then each change until READY or "
        "FAILED (then it ends). Authenticate as for feedUpdates; only the uploader may watch."
    )
    async def media_processing(
        self, info: Ctx, id: strawberry.ID
    ) -> AsyncGenerator[MediaProcessing, None]:
        ref = parse_media_global_id(id)
        async for status in media.media_processing(info.context, ref):
            yield MediaProcessing.of(status, ref[0])

    @strawberry.subscription(
        description="The engagement counts of the tweets you show (1 to TWEET_UPDATES_MAX_IDS, "
        "100 by default): their counts now, then each change, at most one update per tweet "
        "per second, always ending on the latest counts. Every id must name a live tweet "
        "(NOT_FOUND names the first that does not); a retweet's id watches its original. A "
        "watched tweet that is deleted gets one last update with `deleted: true` (at once) "
        "and is no longer watched; the others go on. Once every watched tweet is deleted, "
        "the subscription completes."
    )
    async def tweet_updates(
        self, info: Ctx, ids: list[strawberry.ID]
    ) -> AsyncGenerator[TweetCountsUpdate, None]:
        limit = info.context.services.settings.tweet_updates_max_ids
        refs = [parse_tweet_global_id(i) for i in ids[: limit + 1]]  # more: refused as more
        async for update in live.tweet_updates(info.context, refs):
            counts = update.counts
            yield TweetCountsUpdate(
                tweet_id=strawberry.ID(tweet_global_id(*update.ref)),
                reply_count=counts.replies,
                retweet_count=counts.retweets,
                quote_count=counts.quotes,
                like_count=counts.likes,
                deleted=update.deleted,
            )
