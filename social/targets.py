"""What a tweet id that comes in names: the one rule every operation taking a tweet id applies
(`tweet(id)`, like/unlike, reply, quote, retweet/undo, `tweetUpdates`).

A retweet is a tweet document of its own (storage/retweets.py), but clients never act on it: as
Twitter's API answers a retweet's id with the original (`retweeted_status`), a live retweet's id
names its original, so `tweet(id)` returns the original's node and likes, replies, quotes and
retweets act on the original. An undone retweet's id names nothing (NotFound everywhere), even
though its tombstone still names the original.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from storage.tweets import Tweet, TweetId

Load = Callable[[list[TweetId]], Awaitable[list[Tweet | None]]]
"""Documents by (author, id), tombstones included, in order."""


def via_retweet(tweet: Tweet | None) -> TweetId | None:
    """The original a live retweet stands for; None for anything else."""
    if tweet is None or tweet.retweet_of is None or tweet.deleted:
        return None
    return tweet.retweet_of


async def resolve_many(load: Load, refs: list[TweetId]) -> list[Tweet | None]:
    """The tweets `refs` name, in order (tombstones included, for the caller to judge): a live
    retweet's id gives its original's document; an undone retweet's id, or an unknown id,
    gives None. At most two batched loads."""
    found = await load(refs)
    wanted = sorted({ref for t in found if (ref := via_retweet(t)) is not None})
    originals = dict(zip(wanted, await load(wanted), strict=True)) if wanted else {}
    named: list[Tweet | None] = []
    for tweet in found:
        if tweet is not None and tweet.retweet_of is not None:
            shown = via_retweet(tweet)
            original = None if shown is None else originals.get(shown)
            # A retweet of a retweet is never stored (retweeting one retweets its original).
            named.append(None if original is None or original.retweet_of else original)
        else:
            named.append(tweet)
    return named


async def resolve(load: Load, ref: TweetId) -> Tweet | None:
    """`resolve_many` for one id."""
    [tweet] = await resolve_many(load, [ref])
    return tweet
