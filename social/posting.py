"""Posting and deleting tweets, and reading them back.

A new tweet's fan-out is queued before the tweet is stored, so no stored tweet ever lacks its
fan-out (a job whose tweet never appears is dropped). The author sees it at once: it goes into
their own feed (read-your-writes) and to their own live updates, which fan-out skips.

Durability (`durable_replicas` > 0): a new tweet is acknowledged only once that many replicas of
its shard confirmed the write within `durable_timeout_ms`, so a failover that promotes a replica
loses no acknowledged tweet. If fewer confirm in time the tweet is undone before answering
(tombstoned, out of the timeline, its idempotency key and media freed; the queued fan-out drops a
tombstone) and the request fails with `TryAgain`: the same request, same idempotency key
included, may simply be sent again. The tweet was never shown to anyone but a reader who raced
the few hundred milliseconds of the wait, and those see it disappear like a deleted tweet.

Replies and quotes (issue 12): a tweet may answer one tweet (`in_reply_to`; it joins that
tweet's conversation, whose root it records) and quote one (`quote_of`), both at once as the
Twitter API allows; either must name a live tweet (a live retweet stands for its original, an
undone one for nothing: social.targets), else NotFound and nothing is written. Once stored, a
reply is listed under its parent (storage/conversations.py) and the parent's replies counter
moves when the listing changed; a quote moves the quoted tweet's quotes counter. Deleting takes
both back, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from social import text as tweet_text
from social.errors import (
    InvalidInput,
    MediaMissing,
    MediaNotReady,
    MediaUnusable,
    NotFound,
    NotPermitted,
    TryAgain,
)
from social.fanout_plan import live_event
from social.feed import LoadTweets
from social.paging import page_size
from social.ports import FanoutAction, JobQueue
from social.targets import resolve
from social.throttle import Throttle
from social.visibility import Shown, shown
from storage.conversations import Conversations
from storage.feeds import FeedCache, FeedRef
from storage.ids import IdGenerator
from storage.media import (
    MAX_MEDIA_PER_TWEET,
    MAX_VIDEOS_PER_TWEET,
    MediaInvalid,
    MediaLibrary,
    MediaNotFound,
    media_key,
)
from storage.media import MediaNotReady as VideoNotReady
from storage.retweets import RetweetStore
from storage.tweet_cache import TweetCache, TweetInvalidations
from storage.tweet_counts import Count, TweetCounters
from storage.tweets import MediaNotAttachable, TimelinePage, Tweet, TweetId, TweetStore

MAX_IDEMPOTENCY_KEY_LENGTH = 100
Clock = Callable[[], float]  # seconds since the epoch


def media_ids_of(viewer: int, refs: list[tuple[int, int]]) -> list[int]:
    """The media ids of (owner, media id) refs a tweet would attach, or why they cannot be."""
    if len(refs) > MAX_MEDIA_PER_TWEET:
        raise InvalidInput(f"a tweet has at most {MAX_MEDIA_PER_TWEET} media", field="mediaIds")
    if len(set(refs)) != len(refs):
        raise InvalidInput("the same media is listed twice", field="mediaIds")
    if any(owner != viewer for owner, _ in refs):
        raise NotPermitted("you can only attach media you uploaded", field="mediaIds")
    return [media_id for _, media_id in refs]


def check_media_mix(kinds: list[str | None]) -> None:
    """Up to 4 images or 1 video, as on Twitter (unknown items are refused later)."""
    videos = kinds.count("video")
    if videos and (videos > MAX_VIDEOS_PER_TWEET or len(kinds) > videos):
        raise InvalidInput(
            f"a tweet has up to {MAX_MEDIA_PER_TWEET} images or {MAX_VIDEOS_PER_TWEET} video",
            field="mediaIds",
        )


def unconfirmed(replicas_acked: int, replicas_wanted: int) -> bool:
    """Whether a write confirmed by `replicas_acked` replicas falls short of the durability
    asked for (and must be undone rather than acknowledged)."""
    return replicas_acked < replicas_wanted


def check_idempotency_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidInput(
            f"idempotencyKey must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters",
            field="idempotencyKey",
        )


@dataclass(frozen=True)
class Content:
    """What a createTweet request asks for, as its tweet stores it (text normalized, replies
    and quotes resolved to the tweet they name). An idempotency key stands for one Content:
    a repeat asking for another is refused (Stripe's rule), not answered with the first."""

    text: str
    media_ids: tuple[int, ...]
    in_reply_to: TweetId | None
    quote_of: TweetId | None

    @classmethod
    def of(cls, tweet: Tweet) -> Content:
        media_ids = tuple(item.media_id for item in tweet.media)
        return cls(tweet.text, media_ids, tweet.in_reply_to, tweet.quote_of)


def check_same_request(earlier: Tweet, asked: Content) -> None:
    """Refuse a repeated idempotency key whose request differs from the one that created
    `earlier` (a client bug: a new tweet needs a new key)."""
    if Content.of(earlier) != asked:
        raise InvalidInput(
            "this idempotencyKey was used for a different tweet; a new tweet needs a new key",
            field="idempotencyKey",
        )


class Posting:
    """Create, delete and read tweets. `rate_tweets` ("N/S") bounds new tweets per author."""

    def __init__(
        self,
        *,
        tweets: TweetStore,
        tweet_cache: TweetCache,
        invalidations: TweetInvalidations,
        counters: TweetCounters,
        conversations: Conversations,
        media: MediaLibrary,
        feeds: FeedCache,
        ids: IdGenerator,
        jobs: JobQueue,
        throttle: Throttle,
        clock: Clock,
        rate_tweets: str,
        max_page_size: int,
        durable_replicas: int = 0,
        durable_timeout_ms: int = 500,
        retweets: RetweetStore | None = None,
    ) -> None:
        self._tweets = tweets
        self._retweets = retweets
        self._cache = tweet_cache
        self._invalidations = invalidations
        self._counters = counters
        self._conversations = conversations
        self._media = media
        self._feeds = feeds
        self._ids = ids
        self._jobs = jobs
        self._throttle = throttle
        self._clock = clock
        self._rate_tweets = rate_tweets
        self._max_page_size = max_page_size
        self._durable_replicas = durable_replicas
        self._durable_timeout_ms = durable_timeout_ms

    async def create(
        self,
        author: int,
        text: str,
        media_refs: list[tuple[int, int]],
        idempotency_key: str | None,
        load: LoadTweets,
        in_reply_to: TweetId | None = None,
        quote_of: TweetId | None = None,
    ) -> Tweet:
        """Validate, publish the media, store the tweet; a repeated idempotency key returns the
        tweet it created the first time if the request asks for the same tweet (`Content`),
        else InvalidInput; either way it stores nothing, and costs no rate unless it raced the
        first (then the store's script finds the key taken). A reply or a quote must name a
        live tweet (NotFound otherwise, nothing written)."""
        text = tweet_text.normalize(text)
        media_ids = media_ids_of(author, media_refs)
        check_idempotency_key(idempotency_key)
        parent = await self._live_target(in_reply_to, "inReplyTo")
        quoted = await self._live_target(quote_of, "quoteOf")
        asked = Content(
            text,
            tuple(media_ids),
            None if parent is None else _ref(parent),
            None if quoted is None else _ref(quoted),
        )
        if idempotency_key is not None:
            earlier = await self._tweets.earlier_tweet(author, idempotency_key)
            if earlier is not None:
                return await self._existing(author, earlier, load, asked)
        check_media_mix(await self._media.kinds(author, media_ids))
        await self._throttle.charge("tweet", author, self._rate_tweets)
        try:
            media = await self._media.publish(author, media_ids)
        except MediaNotFound as exc:
            raise MediaMissing(author, exc.media_id, exc.reason) from None
        except VideoNotReady as exc:
            raise MediaNotReady(author, exc.media_id, exc.reason) from None
        except MediaInvalid as exc:
            raise MediaUnusable(author, exc.media_id, exc.reason) from None
        tweet = Tweet(
            tweet_id=self._ids.next_id(),
            author_id=author,
            text=text,
            created_at_ms=int(self._clock() * 1000),
            mentions=tweet_text.mentions(text),
            hashtags=tweet_text.hashtags(text),
            media=tuple(media),
            in_reply_to=asked.in_reply_to,
            conversation=None if parent is None else (parent.conversation or _ref(parent)),
            quote_of=asked.quote_of,
        )
        await self._jobs.fan_out(author, tweet.tweet_id, FanoutAction.PUSH)
        keys = {media_key(author, m): m for m in media_ids}
        try:
            stored_id = await self._store(tweet, idempotency_key, list(keys))
        except MediaNotAttachable as exc:  # a concurrent tweet attached it after we published it
            taken = keys.get(exc.media_key)
            raise MediaUnusable(author, taken, "is already attached to a tweet") from None
        if stored_id != tweet.tweet_id:  # a concurrent request with the same key won
            return await self._existing(author, stored_id, load, asked)
        await self._link(tweet, +1)
        ref = FeedRef(tweet.tweet_id, author)
        await self._feeds.push_to_feeds(ref, [author], live_event("tweet", author, tweet.tweet_id))
        return tweet

    async def _live_target(self, ref: TweetId | None, field: str) -> Tweet | None:
        """The live tweet a reply or quote names (a retweet's original for a retweet), or
        NotFound naming the argument."""
        if ref is None:
            return None
        target = await resolve(self._tweets.get_many, ref)
        if target is None or target.deleted:
            raise NotFound("no such tweet", field=field)
        return target

    async def _link(self, tweet: Tweet, delta: int) -> None:
        """List (+1) or unlist (-1) a reply under its parent and move the counts of the tweets
        it answers and quotes: a reply's when its listing changed, a quote's always (the
        caller calls this once per creation or deletion)."""
        if tweet.in_reply_to is not None:
            reply = (tweet.author_id, tweet.tweet_id)
            conversations = self._conversations
            change = conversations.add_reply if delta > 0 else conversations.remove_reply
            if await change(tweet.in_reply_to, reply):
                await self._counters.bump(*tweet.in_reply_to, Count.REPLIES, delta)
        if tweet.quote_of is not None:
            await self._counters.bump(*tweet.quote_of, Count.QUOTES, delta)

    async def _store(self, tweet: Tweet, idempotency_key: str | None, media_keys: list[str]) -> int:
        """Store the tweet; with durability on, undo it and refuse (`TryAgain`) unless enough
        replicas confirmed it in time. The id of the tweet that exists for the request."""
        if self._durable_replicas <= 0:
            return await self._tweets.create(tweet, idempotency_key, media_keys)
        created = await self._tweets.create_durably(
            tweet,
            idempotency_key,
            media_keys,
            replicas=self._durable_replicas,
            timeout_ms=self._durable_timeout_ms,
        )
        if created.tweet_id != tweet.tweet_id or not unconfirmed(
            created.replicas_acked, self._durable_replicas
        ):
            return created.tweet_id  # confirmed, or an earlier request's tweet
        await self._tweets.abandon(tweet, idempotency_key, media_keys)
        # A reader who raced the wait may hold it in a process cache: drop it everywhere.
        ref = (tweet.author_id, tweet.tweet_id)
        self._cache.evict(ref)
        await self._invalidations.publish(ref)
        raise TryAgain(
            f"the tweet was not confirmed by {self._durable_replicas} replica(s) within "
            f"{self._durable_timeout_ms} ms and was not posted; retry with the same "
            "idempotencyKey",
            reason="NOT_REPLICATED",
            replicasAcknowledged=created.replicas_acked,
        )

    async def _existing(
        self, author: int, tweet_id: int, load: LoadTweets, asked: Content
    ) -> Tweet:
        """The tweet an earlier request with the same idempotency key created, if this request
        asks for the same one."""
        [tweet] = await load([(author, tweet_id)])
        if tweet is None or tweet.deleted:
            raise NotFound("the tweet created with this idempotency key was deleted")
        check_same_request(tweet, asked)
        return tweet

    async def delete(self, viewer: int, author: int, tweet_id: int) -> None:
        """Tombstone the tweet, drop it from its timeline and from every process's cache, tell
        its tweetUpdates watchers, and have a worker delete its media. Only the author may;
        repeating it is harmless."""
        [tweet] = await self._tweets.get_many([(author, tweet_id)])
        if tweet is None or (tweet.deleted and viewer != author):
            raise NotFound("no such tweet")
        if viewer != author:
            raise NotPermitted("only the author can delete a tweet")
        if tweet.retweet_of is not None:
            raise InvalidInput("this is a retweet: undo it with undoRetweet", field="id")
        if await self._tweets.tombstone(tweet):
            await self._link(tweet, -1)
        elif tweet.in_reply_to is not None:  # a repeat: finish an unlisting cut short
            await self._conversations.remove_reply(tweet.in_reply_to, (author, tweet_id))
        self._cache.evict((author, tweet_id))
        await self._invalidations.publish((author, tweet_id))
        # tweetUpdates watchers are told once, and stop watching it (a repeat: harmless).
        await self._counters.publish_deleted(author, tweet_id)
        await self._jobs.fan_out(author, tweet_id, FanoutAction.UNPUSH)  # reads already hide it
        # Out of the author's own feed, telling the author's own live updates (as fan-out tells
        # the others).
        gone = live_event("deleted", author, tweet_id)
        await self._feeds.unpush_from_feeds(FeedRef(tweet_id, author), [author], gone)
        if tweet.media:
            await self._jobs.purge_tweet_media(author, tweet_id)

    async def timeline(
        self, author: int, first: int, before: int | None, load: LoadTweets
    ) -> tuple[list[tuple[int, Shown]], TimelinePage]:
        """A page of the author's tweets (each with its id in the timeline), newest first, and
        the page of ids it came from. A retweet shows its original, retweeted by the author
        (not at all once either is gone): one more load for the originals when the page has
        retweets. An original the author retweeted shows once, as Twitter shows it: at the
        retweet's (newer) place, on whichever page that is; its own entry is left out (one
        HMGET of the author's retweets per page)."""
        size = page_size(first, self._max_page_size)
        page = await self._tweets.timeline_page(author, size, before)
        found = [t for t in await load([(author, t) for t in page.tweet_ids]) if shown(t)]
        if self._retweets is not None:
            own = [t.tweet_id for t in found if t is not None and t.retweet_of is None]
            again = await self._retweets.retweeted(author, [(author, t) for t in own])
            higher = {t for t, retweeted in zip(own, again, strict=True) if retweeted}
            found = [t for t in found if t is not None and t.tweet_id not in higher]
        wanted = sorted({t.retweet_of for t in found if t is not None and t.retweet_of})
        originals = dict(zip(wanted, await load(wanted), strict=True)) if wanted else {}
        entries = []
        for tweet in found:
            assert tweet is not None
            if tweet.retweet_of is None:
                entries.append((tweet.tweet_id, Shown(tweet)))
            elif shown(original := originals[tweet.retweet_of]):
                assert original is not None
                entries.append((tweet.tweet_id, Shown(original, retweeted_by=author)))
        return entries, page

    async def replies(
        self, parent: TweetId, first: int, after: TweetId | None, load: LoadTweets
    ) -> tuple[list[Tweet], bool, TweetId | None]:
        """A page of the replies to `parent`, oldest first (as a conversation reads): the
        live replies, whether more follow, and the cursor of the last listed."""
        size = page_size(first, self._max_page_size)
        page = await self._conversations.replies_page(parent, size, after)
        found = [t for t in await load(page.replies) if t is not None and shown(t)]
        end = page.replies[-1] if page.replies else None
        return found, page.has_next_page, end


def _ref(tweet: Tweet) -> TweetId:
    return tweet.author_id, tweet.tweet_id
