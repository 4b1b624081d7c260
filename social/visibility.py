"""What a viewer may see of a feed, decided without I/O (as Mastodon's `filter_from_home?`).

The read path fetches first (the candidate refs, whom the viewer follows among their authors, the
documents of those allowed) and these functions decide: a viewer sees their own tweets and those of
the people they follow now, never a deleted or missing one; and a page takes candidates newest
first until it is full, noting the ones it skipped so their space can be reclaimed.

Conversations and retweets (Twitter's home rules):
- a reply shows only to a viewer who follows both the replier and the person replied to (or is
  one of them): `reply_allowed`; the fan-out applies the same rule (`reply_audience`);
- a retweet entry shows the original, "retweeted by" the entry's author; never if the retweet
  was undone or the original is gone;
- a viewer sees an original once: among the entries showing it, the earliest wins
  (`earliest_per_original`). The cached feed keeps every entry and its index says which one
  shows (storage/feeds.py `feed_originals`, applied by pushes, follow merges, rebuilds and
  every removal, which lets the next entry show); a rebuild marks the same one
  (`rebuilt_feed`); a read sees only the entries that show, and over what it fetched (merged
  celebrity tweets included) passes over a later entry of an original (a page also skips an
  original it showed already: `PageFill`), keeping it cached; a cached retweet of a
  celebrity's tweet that the read merges is passed over (`shown_by_celebrity`): the original
  shows at its own, earlier, place, on whichever page that falls.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from storage.feeds import FeedRef
from storage.tweets import Tweet, TweetId


@dataclass(frozen=True)
class Shown:
    """What a feed entry shows: the tweet (for a retweet, the original) and who retweeted it."""

    tweet: Tweet
    retweeted_by: int | None = None

    @property
    def original(self) -> TweetId:
        return self.tweet.author_id, self.tweet.tweet_id


def feed_ref(ref: TweetId) -> FeedRef:
    """The feed entry of a tweet given as (author id, tweet id)."""
    return FeedRef(tweet_id=ref[1], author_id=ref[0])


def reply_allowed(viewer: int, tweet: Tweet, followed: Collection[int]) -> bool:
    """Whether the viewer, who sees the replier's tweets, sees this one: not a reply, the
    viewer's own, a reply to the replier's own tweet (a thread) or to the viewer, or to
    someone the viewer follows (`followed`)."""
    if tweet.in_reply_to is None or viewer == tweet.author_id:
        return True
    parent_author = tweet.in_reply_to[0]
    return parent_author in (viewer, tweet.author_id) or parent_author in followed


def reply_audience(
    tweet: Tweet, followers: list[int], following_parent_author: Collection[int]
) -> list[int]:
    """Which of the author's `followers` a new tweet is pushed to: all of them, or for a reply
    only those who see it (`reply_allowed`: `following_parent_author` are the followers that
    follow the person replied to)."""
    if tweet.in_reply_to is None:
        return list(followers)
    parent_author = tweet.in_reply_to[0]
    return [
        v
        for v in followers
        if reply_allowed(v, tweet, [parent_author] if v in following_parent_author else [])
    ]


def parent_authors(viewer: int, documents: list[Tweet | None]) -> list[int]:
    """Whose follow state `reply_allowed` needs for these documents (the viewer's follows)."""
    authors = {
        d.in_reply_to[0]
        for d in documents
        if d is not None and d.in_reply_to is not None and d.retweet_of is None
    }
    return sorted(authors - {viewer})


def originals_of(documents: list[Tweet | None]) -> list[TweetId]:
    """The originals the retweets among `documents` show, without repeats."""
    return sorted({d.retweet_of for d in documents if d is not None and d.retweet_of})


def decide(
    viewer: int,
    allowed: list[FeedRef],
    documents: list[Tweet | None],
    originals: Mapping[TweetId, Tweet | None],
    followed: Collection[int],
    superseded: set[FeedRef] | None = None,
) -> dict[FeedRef, Shown]:
    """What the allowed refs show (`documents[i]` for `allowed[i]`; `originals` the documents
    of the originals they retweet; `followed` the viewer's follows among the authors replied
    to): shown documents, retweets of shown originals, replies that pass `reply_allowed`; each
    original once, at its earliest entry (the later entries of it go to `superseded`: visible,
    but not shown here)."""
    found: dict[FeedRef, Shown] = {}
    for ref, tweet in zip(allowed, documents, strict=True):
        if tweet is None or not shown(tweet):
            continue
        if tweet.retweet_of is not None:
            original = originals.get(tweet.retweet_of)
            if original is not None and shown(original):
                found[ref] = Shown(original, retweeted_by=ref.author_id)
        elif reply_allowed(viewer, tweet, followed):
            found[ref] = Shown(tweet)
    keep = earliest_per_original(list(found.items()))
    if superseded is not None:
        superseded.update(ref for ref in found if ref not in keep)
    return {ref: entry for ref, entry in found.items() if ref in keep}


def earliest_per_original(entries: list[tuple[FeedRef, Shown]]) -> set[FeedRef]:
    """Of entries (any order), the refs to keep so each original shows once: the earliest entry
    showing it (the original's own entry is older than any retweet of it)."""
    earliest: dict[TweetId, FeedRef] = {}
    for ref, entry in entries:
        known = earliest.get(entry.original)
        if known is None or ref < known:
            earliest[entry.original] = ref
    return set(earliest.values())


@dataclass(frozen=True)
class RebuiltFeed:
    """A feed rebuilt from gathered refs: every entry kept (newest first), the original each
    retweet entry among them shows (for the feed's index), and the entries that show (each
    original once: its earliest entry), as the cached feed's index decides."""

    entries: list[FeedRef]
    originals: dict[FeedRef, FeedRef]
    shown: list[FeedRef]


def rebuilt_feed(
    viewer: int, refs: list[FeedRef], documents: list[Tweet | None], followed: Collection[int]
) -> RebuiltFeed:
    """A rebuilt feed from gathered `refs` (newest first, `documents[i]` for `refs[i]`; the
    viewer's `followed` ids): the entries it keeps (replies by the rule; deleted ones dropped;
    every entry of an original, its earliest showing), the originals of its retweet entries
    and the entries that show. Originals are not fetched: a read hides a retweet whose
    original is gone."""
    found: dict[FeedRef, Shown] = {}
    for ref, tweet in zip(refs, documents, strict=True):
        if tweet is None or not shown(tweet):
            continue
        if tweet.retweet_of is not None:
            # The original's document is not needed to decide: a stand-in carrying its id.
            author, tweet_id = tweet.retweet_of
            found[ref] = Shown(Tweet(tweet_id, author, "", 0), retweeted_by=ref.author_id)
        elif reply_allowed(viewer, tweet, followed):
            found[ref] = Shown(tweet)
    keep = earliest_per_original(list(found.items()))
    entries = [ref for ref in refs if ref in found]
    originals = {
        ref: feed_ref(found[ref].original) for ref in entries if found[ref].retweeted_by is not None
    }
    return RebuiltFeed(entries, originals, [ref for ref in entries if ref in keep])


def shown_by_celebrity(
    found: Mapping[FeedRef, Shown], celebrity: Collection[FeedRef]
) -> list[FeedRef]:
    """The retweet entries among `found` whose original is one of the celebrity tweets a read
    merges (`celebrity`, their refs): the original shows there, at an earlier entry than any
    retweet of it, so those entries are passed over (earliest wins, as in the cached feed)."""
    if not celebrity:
        return []
    merged = set(celebrity)
    return [
        ref
        for ref, entry in found.items()
        if entry.retweeted_by is not None and feed_ref(entry.original) in merged
    ]


def authors_to_check(viewer: int, refs: list[FeedRef]) -> list[int]:
    """The authors among `refs` whose follow state decides visibility (all but the viewer),
    sorted and without repeats: one batched lookup answers for all of them."""
    return sorted({r.author_id for r in refs if r.author_id != viewer})


def allowed_refs(viewer: int, refs: list[FeedRef], followed: Collection[int]) -> list[FeedRef]:
    """The refs by the viewer or by an author the viewer follows (`followed`), in order."""
    return [r for r in refs if r.author_id == viewer or r.author_id in followed]


def shown(tweet: Tweet | None) -> bool:
    """A document is shown if it exists and is not a tombstone (as `visible` decides)."""
    return tweet is not None and not tweet.deleted


def between(refs: list[FeedRef], cursor: FeedRef | None, floor: FeedRef | None) -> list[FeedRef]:
    """The refs older than `cursor` and no older than `floor` (None: no bound)."""
    return [r for r in refs if (cursor is None or r < cursor) and (floor is None or r >= floor)]


@dataclass
class PageFill:
    """A page being filled over rounds of candidates: what it shows, what it passed over (to
    reclaim), and where the next round starts."""

    want: int
    cursor: FeedRef | None
    shown: list[tuple[FeedRef, Shown]]
    hidden: list[FeedRef]
    originals: set[TweetId] = field(default_factory=set)  # shown on this page already

    @property
    def full(self) -> bool:
        return len(self.shown) == self.want

    def take(
        self,
        candidates: list[FeedRef],
        visible: Mapping[FeedRef, Shown],
        passed: Collection[FeedRef] = (),
    ) -> int:
        """Walk `candidates` (newest first) until the page is full: the visible go on the page
        (an original once: a later entry of one shown is skipped), the `passed` are skipped
        (shown elsewhere, kept in the feed), the others go to `hidden`. Returns how many
        candidates were left unread."""
        unread = len(candidates)
        for ref in candidates:
            if self.full:
                break
            self.cursor, unread = ref, unread - 1
            entry = visible.get(ref)
            if entry is None and ref in passed:
                continue
            if entry is None:
                self.hidden.append(ref)
            elif entry.original in self.originals:
                continue  # shown at a newer entry of this read; kept in the feed all the same
            else:
                self.originals.add(entry.original)
                self.shown.append((ref, entry))
        return unread
