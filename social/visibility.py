"""What a viewer may see of a feed, decided without I/O (as Mastodon's `filter_from_home?`).

The read path fetches first (the candidate refs, whom the viewer follows among their authors, the
documents of those allowed) and these functions decide: a viewer sees their own tweets and those of
the people they follow now, never a deleted or missing one; and a page takes candidates newest
first until it is full, noting the ones it skipped so their space can be reclaimed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from storage.feeds import FeedRef
from storage.tweets import Tweet


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


def visible(allowed: list[FeedRef], documents: list[Tweet | None]) -> dict[FeedRef, Tweet]:
    """The allowed refs whose documents (`documents[i]` for `allowed[i]`) are shown."""
    return {
        ref: tweet
        for ref, tweet in zip(allowed, documents, strict=True)
        if tweet is not None and not tweet.deleted
    }


def between(refs: list[FeedRef], cursor: FeedRef | None, floor: FeedRef | None) -> list[FeedRef]:
    """The refs older than `cursor` and no older than `floor` (None: no bound)."""
    return [r for r in refs if (cursor is None or r < cursor) and (floor is None or r >= floor)]


@dataclass
class PageFill:
    """A page being filled over rounds of candidates: what it shows, what it passed over (to
    reclaim), and where the next round starts."""

    want: int
    cursor: FeedRef | None
    shown: list[tuple[FeedRef, Tweet]]
    hidden: list[FeedRef]

    @property
    def full(self) -> bool:
        return len(self.shown) == self.want

    def take(self, candidates: list[FeedRef], visible: Mapping[FeedRef, Tweet]) -> int:
        """Walk `candidates` (newest first) until the page is full: the visible go on the page,
        the others to `hidden`. Returns how many candidates were left unread."""
        unread = len(candidates)
        for ref in candidates:
            if self.full:
                break
            self.cursor, unread = ref, unread - 1
            tweet = visible.get(ref)
            if tweet is None:
                self.hidden.append(ref)
            else:
                self.shown.append((ref, tweet))
        return unread
