"""What the background jobs do (the actors in `fanout.actors` only run these).

Three tiers, as Mastodon's fan-out: `fan_out` decides who receives (pages of the author's
followers), `deliver` hands one batch to the feed store, which applies it in one script call.
Jobs carry ids only and are idempotent: running one twice, or after its work was done another
way, changes nothing more.

A batch reads its tweet's document (one round trip) to apply the feed's rules: a reply goes
only to the followers who also follow the person replied to (one graph query per batch:
`followers_among`); a retweet goes into every feed, and shows (goes live) only where no
earlier entry of its original is (decided by the push script, storage/feeds.py); taking an
entry out lets the next entry of its original show. Deleting a tweet takes its retweets down too:
the first pass of its UNPUSH undoes every indexed retweet of it (storage/retweets.py) and
queues their own UNPUSH passes, so every feed loses them and live viewers are told.
"""

from __future__ import annotations

import asyncio

from graph.port import SocialGraph
from social.fanout_plan import batches, celebrity_flag, live_event
from social.ports import FanoutAction, JobQueue
from social.visibility import feed_ref, reply_audience
from storage.accounts import AccountStore
from storage.fanout_stats import FanoutStats
from storage.feeds import FeedCache, FeedRef
from storage.followee_sets import FolloweeSets
from storage.media import MediaLibrary, VideoBusy
from storage.retweets import RetweetStore
from storage.tweets import Tweet, TweetStore

STORE_WAIT_SECONDS = 0.02  # fan-out is enqueued before the tweet is stored: wait a moment
STORE_WAIT_TRIES = 5


class TweetNotStoredYet(Exception):
    """The tweet's document is not there (yet): the job is retried briefly (its actor's
    retries), then given up: a tweet whose fan-out was queued but that was never stored."""


class VideoHeldElsewhere(Exception):
    """Another worker holds a live processing lease on the video: retried after a backoff
    (its lease runs out if that worker died)."""


class FollowStateMoved(Exception):
    """The follower's follow state changed while a clean-up was deciding: decide again later."""


class FanOut:
    """Parameters: followers are paged `page_size` per job and delivered `batch_size` per
    script call; an author is a celebrity above `celebrity_followers` followers, until below
    that times `celebrity_hysteresis`."""

    def __init__(
        self,
        *,
        graph: SocialGraph,
        tweets: TweetStore,
        retweets: RetweetStore,
        feeds: FeedCache,
        followee_sets: FolloweeSets,
        stats: FanoutStats,
        accounts: AccountStore,
        media: MediaLibrary,
        jobs: JobQueue,
        page_size: int,
        batch_size: int,
        celebrity_followers: int,
        celebrity_hysteresis: float,
    ) -> None:
        self._graph = graph
        self._tweets = tweets
        self._retweets = retweets
        self._feeds = feeds
        self._followee_sets = followee_sets
        self._stats = stats
        self._accounts = accounts
        self._media = media
        self._jobs = jobs
        self._page_size = page_size
        self._batch_size = batch_size
        self._celebrity_followers = celebrity_followers
        self._celebrity_hysteresis = celebrity_hysteresis

    async def fan_out(
        self, author_id: int, tweet_id: int, action: FanoutAction, after: int | None = None
    ) -> None:
        """Deliver `action` for the tweet to the author's followers after `after`: page the
        followers from the graph, one delivery job per batch, and the next page as a new job, so
        a huge audience is shared by all workers and no job runs long.

        The first job of a push checks the tweet is stored and whether the author is (still) a
        celebrity, whose tweets are not pushed but merged at read time. A flag that changes
        makes every follower's cached followee set stale: a REFLAG pass drops them."""
        if after is None and action is FanoutAction.PUSH:
            if not await self._tweet_is_live(author_id, tweet_id):
                return
            celebrity, changed = await self._update_celebrity_flag(author_id)
            if changed:
                await self._jobs.fan_out(author_id, tweet_id, FanoutAction.REFLAG)
            if celebrity:
                return
        if after is None and action is FanoutAction.UNPUSH:
            await self._take_down_retweets(author_id, tweet_id)
        page = await self._graph.follower_ids_page(author_id, after, self._page_size)
        for batch in batches(page, self._batch_size):
            await self._jobs.deliver(author_id, tweet_id, batch, action)
        if len(page) == self._page_size:
            await self._jobs.fan_out(author_id, tweet_id, action, page[-1])

    async def _tweet_is_live(self, author_id: int, tweet_id: int) -> bool:
        """True once the document exists; False if it was deleted; raises if it never appears."""
        for _ in range(STORE_WAIT_TRIES):
            [tweet] = await self._tweets.get_many([(author_id, tweet_id)])
            if tweet is not None:
                return not tweet.deleted
            await asyncio.sleep(STORE_WAIT_SECONDS)
        raise TweetNotStoredYet(f"tweet {tweet_id} of {author_id}")

    async def _take_down_retweets(self, author_id: int, tweet_id: int) -> None:
        """The original (author, tweet) is deleted: undo each of its retweets (out of the
        retweeter's timeline and retweets) and take it out of every feed, the retweeter's own
        included, with a live deletion. Its counts no longer matter. Safe to repeat."""
        for retweeter, retweet_id in await self._retweets.retweets((author_id, tweet_id)):
            [retweet] = await self._tweets.get_many([(retweeter, retweet_id)])
            if retweet is None or retweet.retweet_of is None:
                continue
            await self._retweets.undo(retweet)
            await self._jobs.fan_out(retweeter, retweet_id, FanoutAction.UNPUSH)
            await self._unpush(retweet, [retweeter])

    async def _unpush(self, tweet: Tweet, viewer_ids: list[int]) -> None:
        """Out of these viewers' feeds, with a live deletion for those online that had it."""
        ref = FeedRef(tweet_id=tweet.tweet_id, author_id=tweet.author_id)
        original = tweet.retweet_of
        event = live_event("deleted", tweet.author_id, tweet.tweet_id, original)
        shows = None if original is None else feed_ref(original)
        await self._feeds.unpush_from_feeds(ref, viewer_ids, event, shows)

    async def _audience(self, tweet: Tweet, follower_ids: list[int]) -> list[int]:
        """Who of the author's followers gets the tweet pushed (the reply rule)."""
        if tweet.in_reply_to is None or tweet.in_reply_to[0] == tweet.author_id:
            return follower_ids
        parent_author = tweet.in_reply_to[0]
        following = await self._graph.followers_among(parent_author, follower_ids)
        return reply_audience(tweet, follower_ids, following)

    async def _update_celebrity_flag(self, author_id: int) -> tuple[bool, bool]:
        """Re-decide the author's celebrity flag from their follower count: (flag, changed)."""
        status = await self._graph.celebrity_status(author_id)
        if status is None:
            return False, False
        followers, flagged = status
        flag = celebrity_flag(
            followers, flagged, self._celebrity_followers, self._celebrity_hysteresis
        )
        if flag != flagged:
            await self._graph.set_celebrity(author_id, flag)
        return flag, flag != flagged

    async def deliver(
        self, author_id: int, tweet_id: int, follower_ids: list[int], action: FanoutAction
    ) -> None:
        """Apply `action` to one batch of followers with one script call: push the tweet into
        their existing feeds or take it out (online followers get a live event, once), or drop
        their cached followee sets. Safe to repeat."""
        ref = FeedRef(tweet_id=tweet_id, author_id=author_id)
        match action:
            case FanoutAction.PUSH:
                [tweet] = await self._tweets.get_many([(author_id, tweet_id)])
                if tweet is None or tweet.deleted:
                    return  # deleted meanwhile (its UNPUSH follows), or abandoned
                audience = await self._audience(tweet, follower_ids)
                original = None if tweet.retweet_of is None else feed_ref(tweet.retweet_of)
                event = live_event("tweet", author_id, tweet_id)
                changed = await self._feeds.push_to_feeds(ref, audience, event, original)
                await self._stats.record_batch(tweet_id, len(follower_ids), changed)
            case FanoutAction.UNPUSH:
                [tweet] = await self._tweets.get_many([(author_id, tweet_id)])
                if tweet is None:  # never stored: nothing can hold it
                    return
                await self._unpush(tweet, follower_ids)
            case FanoutAction.REFLAG:
                await self._followee_sets.invalidate_following_many(follower_ids)

    async def reconcile(self, follower_id: int, followee_id: int) -> None:
        """After an unfollow: if the graph says the follow is really gone, remove the
        followee's tweets from the follower's feed. Re-reading the graph makes late or repeated
        runs safe, and the removal happens only if the follower's follow state is still the one
        the graph was read at: a re-follow between the check and the removal (which merges the
        tweets back) raises FollowStateMoved, to run again later and find the follow."""
        version = await self._followee_sets.following_version(follower_id)
        if followee_id in await self._graph.following_among(follower_id, [followee_id]):
            return
        if await self._feeds.unmerge_from_feed(follower_id, followee_id, version) is None:
            raise FollowStateMoved(f"{follower_id} follows {followee_id} again, or unfollowed")

    async def collect_unclaimed_account(self, user_id: int, username: str) -> None:
        """Remove the profile and graph node of a sign-up that never claimed its username.
        Queued (delayed by the claim grace period) before a sign-up writes anything; a
        completed sign-up owns the name, and then this does nothing."""
        if await self._accounts.owner_of(username) == user_id:
            return
        await self._graph.delete_user(user_id)
        await self._accounts.delete_profile(user_id)

    async def purge_tweet_media(self, author_id: int, tweet_id: int) -> None:
        """Delete the objects and records of a deleted tweet's media. A live tweet is left
        alone."""
        [tweet] = await self._tweets.get_many([(author_id, tweet_id)])
        if tweet is None or not tweet.deleted:
            return
        for item in tweet.media:
            await self._media.purge(author_id, item.media_id, unless_attached=False)

    async def collect_orphan_media(self, owner_id: int, media_id: int) -> None:
        """When an upload expires: delete it unless a tweet attached it, and in any case its
        upload object (S3 cannot revoke a presigned URL: a re-sent file goes here)."""
        await self._media.purge(owner_id, media_id, unless_attached=True)

    async def process_video(self, owner_id: int, media_id: int) -> None:
        """Check, clean and publish an uploaded video (`MediaLibrary.process_video`: in a
        bounded child process, under a renewed lease, with counted attempts)."""
        try:
            await self._media.process_video(owner_id, media_id)
        except VideoBusy as exc:
            raise VideoHeldElsewhere(str(exc)) from None
