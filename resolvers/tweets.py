"""Create, delete and read tweets on behalf of the authenticated viewer."""

from __future__ import annotations

import time

from fanout.planner import live_event
from resolvers import tweet_text
from resolvers.context import RequestContext
from resolvers.limits import enforce
from resolvers.social import page_size
from schema.errors import BadUserInput, Forbidden, NotFound
from schema.ids import media_global_id
from storage.feeds import FeedRef
from storage.media import MAX_MEDIA_PER_TWEET, MediaError, MediaInvalid, MediaNotFound, media_key
from storage.tweet_cache import publish_invalidation
from storage.tweets import MediaNotAttachable, TimelinePage, Tweet

MAX_IDEMPOTENCY_KEY_LENGTH = 100


def _validate_media_refs(viewer: int, refs: list[tuple[int, int]]) -> list[int]:
    if len(refs) > MAX_MEDIA_PER_TWEET:
        raise BadUserInput(f"a tweet has at most {MAX_MEDIA_PER_TWEET} media", field="mediaIds")
    if len(set(refs)) != len(refs):
        raise BadUserInput("the same media is listed twice", field="mediaIds")
    if any(owner != viewer for owner, _ in refs):
        raise Forbidden("you can only attach media you uploaded", field="mediaIds")
    return [media_id for _, media_id in refs]


def _media_message(viewer: int, exc: MediaError) -> str:
    """Name the media by the global id the client sent, not by the internal number."""
    return f"media {media_global_id(viewer, exc.media_id)} {exc.reason}"


async def create_tweet(
    ctx: RequestContext,
    text: str,
    media_refs: list[tuple[int, int]],
    idempotency_key: str | None,
) -> Tweet:
    """Validate, publish the media, store the tweet; a repeated idempotency key returns the
    tweet it created the first time, changing nothing."""
    services = ctx.services
    viewer = await ctx.viewer_id()
    text = tweet_text.normalize(text)
    media_ids = _validate_media_refs(viewer, media_refs)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise BadUserInput(
            f"idempotencyKey must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters",
            field="idempotencyKey",
        )
    if idempotency_key is not None:
        earlier = await services.tweets.earlier_tweet(viewer, idempotency_key)
        if earlier is not None:
            return await _existing(ctx, viewer, earlier)
    await enforce(ctx, "tweet", viewer, services.settings.rate_tweets)
    try:
        media = await services.media.publish(viewer, media_ids)
    except MediaNotFound as exc:
        raise NotFound(_media_message(viewer, exc), field="mediaIds") from None
    except MediaInvalid as exc:
        raise BadUserInput(_media_message(viewer, exc), field="mediaIds") from None
    tweet = Tweet(
        tweet_id=services.ids.next_id(),
        author_id=viewer,
        text=text,
        created_at_ms=int(time.time() * 1000),
        mentions=tweet_text.mentions(text),
        hashtags=tweet_text.hashtags(text),
        media=tuple(media),
    )
    # Fan-out is queued before the tweet is stored, so no stored tweet ever lacks its fan-out; a
    # job whose tweet never appears (a crash here, or a repeated idempotency key) is dropped.
    await services.jobs.fan_out(viewer, tweet.tweet_id)
    try:
        stored_id = await services.tweets.create(
            tweet, idempotency_key, [media_key(viewer, m) for m in media_ids]
        )
    except MediaNotAttachable as exc:  # a concurrent tweet attached it after we published it
        taken = next((m for m in media_ids if media_key(viewer, m) == exc.media_key), None)
        which = "a media item" if taken is None else f"media {media_global_id(viewer, taken)}"
        raise BadUserInput(f"{which} is already attached to a tweet", field="mediaIds") from None
    if stored_id != tweet.tweet_id:
        return await _existing(ctx, viewer, stored_id)
    # Read-your-writes: into the author's own feed now (a missing feed is rebuilt with it), and
    # live to the author's own feedUpdates like any other new entry (fan-out skips the author).
    ref = FeedRef(tweet.tweet_id, viewer)
    await services.feeds.push_to_feeds(ref, [viewer], live_event("tweet", viewer, tweet.tweet_id))
    return tweet


async def _existing(ctx: RequestContext, author_id: int, tweet_id: int) -> Tweet:
    tweet = await ctx.tweets.load((author_id, tweet_id))
    if tweet is None or tweet.deleted:
        raise NotFound("the tweet created with this idempotency key was deleted")
    return tweet


async def delete_tweet(ctx: RequestContext, author_id: int, tweet_id: int) -> None:
    """Tombstone the tweet, drop it from its timeline and from every process's cache, and have
    a worker delete its media. Only the author may; repeating it is harmless."""
    services = ctx.services
    viewer = await ctx.viewer_id()
    [tweet] = await services.tweets.get_many([(author_id, tweet_id)])
    if tweet is None or (tweet.deleted and viewer != author_id):
        raise NotFound("no such tweet")
    if viewer != author_id:
        raise Forbidden("only the author can delete a tweet")
    await services.tweets.tombstone(tweet)
    services.tweet_cache.evict((author_id, tweet_id))
    await publish_invalidation(services.documents, (author_id, tweet_id))
    await services.jobs.retract(author_id, tweet_id)  # reclaim feed space; reads already hide it
    # Out of the author's own feed, telling the author's own feedUpdates (as the job tells others).
    gone = live_event("deleted", author_id, tweet_id)
    await services.feeds.unpush_from_feeds(FeedRef(tweet_id, author_id), [author_id], gone)
    if tweet.media:
        await services.jobs.purge_tweet_media(author_id, tweet_id)


async def visible_tweet(ctx: RequestContext, author_id: int, tweet_id: int) -> Tweet | None:
    tweet = await ctx.tweets.load((author_id, tweet_id))
    return None if tweet is None or tweet.deleted else tweet


async def timeline(
    ctx: RequestContext, author_id: int, first: int, before: int | None
) -> tuple[list[Tweet], TimelinePage]:
    """A page of the author's tweets, newest first, and the page of ids it came from."""
    page = await ctx.services.tweets.timeline_page(author_id, page_size(ctx, first), before)
    tweets = await ctx.tweets.load_many([(author_id, t) for t in page.tweet_ids])
    return [t for t in tweets if t is not None and not t.deleted], page
