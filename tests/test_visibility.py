"""What a viewer may see, and how a feed page fills: pure rules, no server."""

from __future__ import annotations

from dataclasses import replace

from social import visibility
from social.fanout_plan import batches, celebrity_flag
from social.feed import FeedItem, Followees
from storage.feed_builder import merge_newest
from storage.feeds import FeedPage, FeedRef
from storage.tweets import Tweet

VIEWER, FOLLOWED, STRANGER = 1, 2, 3


def doc(ref: FeedRef, *, deleted: bool = False) -> Tweet:
    return Tweet(ref.tweet_id, ref.author_id, "" if deleted else "hi", 0, deleted=deleted)


def test_own_and_followed_authors_only() -> None:
    refs = [FeedRef(30, STRANGER), FeedRef(20, FOLLOWED), FeedRef(10, VIEWER)]
    assert visibility.authors_to_check(VIEWER, refs) == [FOLLOWED, STRANGER]
    allowed = visibility.allowed_refs(VIEWER, refs, followed={FOLLOWED})
    assert allowed == [FeedRef(20, FOLLOWED), FeedRef(10, VIEWER)]


def test_missing_and_deleted_documents_are_not_shown() -> None:
    kept, deleted, missing = FeedRef(3, FOLLOWED), FeedRef(2, FOLLOWED), FeedRef(1, VIEWER)
    shown = visibility.decide(
        VIEWER, [kept, deleted, missing], [doc(kept), doc(deleted, deleted=True), None], {}, []
    )
    assert list(shown) == [kept]
    assert not visibility.shown(None)
    assert not visibility.shown(doc(deleted, deleted=True))


def test_between_bounds_celebrity_refs_by_cursor_and_floor() -> None:
    refs = [FeedRef(t, FOLLOWED) for t in (50, 40, 30, 20, 10)]
    assert visibility.between(refs, None, None) == refs
    assert visibility.between(refs, FeedRef(40, FOLLOWED), FeedRef(20, FOLLOWED)) == refs[2:4]


def test_a_page_fills_newest_first_and_remembers_what_it_skipped() -> None:
    candidates = [FeedRef(t, FOLLOWED) for t in (9, 8, 7, 6, 5)]
    visible = {ref: visibility.Shown(doc(ref)) for ref in candidates if ref.tweet_id != 8}
    fill = visibility.PageFill(want=2, cursor=None, shown=[], hidden=[])
    unread = fill.take(candidates, visible)
    assert [ref.tweet_id for ref, _ in fill.shown] == [9, 7]
    assert fill.hidden == [FeedRef(8, FOLLOWED)]
    assert fill.full and fill.cursor == FeedRef(7, FOLLOWED)
    assert unread == 2  # 6 and 5: the next page starts after the cursor


def test_a_page_takes_more_rounds_until_full() -> None:
    fill = visibility.PageFill(want=3, cursor=None, shown=[], hidden=[])
    first = [FeedRef(t, STRANGER) for t in (9, 8)]  # all hidden
    assert fill.take(first, {}) == 0 and not fill.full
    second = [FeedRef(t, FOLLOWED) for t in (7, 6, 5, 4)]
    fill.take(second, {ref: visibility.Shown(doc(ref)) for ref in second})
    assert [ref.tweet_id for ref, _ in fill.shown] == [7, 6, 5]
    assert fill.hidden == first


def test_merged_streams_are_newest_first_without_duplicates() -> None:
    cached = [FeedRef(9, FOLLOWED), FeedRef(5, FOLLOWED)]
    celebrity = [FeedRef(7, STRANGER), FeedRef(5, FOLLOWED)]
    assert merge_newest([cached, celebrity]) == [cached[0], celebrity[0], cached[1]]
    item = FeedItem(cached[0], doc(cached[0]))
    assert item.ref < FeedRef(10, 0)


def test_celebrity_flag_has_hysteresis() -> None:
    assert not celebrity_flag(100, flagged=False, threshold=100, hysteresis=0.9)
    assert celebrity_flag(101, flagged=False, threshold=100, hysteresis=0.9)
    assert celebrity_flag(90, flagged=True, threshold=100, hysteresis=0.9)
    assert not celebrity_flag(89, flagged=True, threshold=100, hysteresis=0.9)
    assert batches([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


async def test_follow_state_is_learnt_from_pages_and_asked_once_for_the_rest() -> None:
    asked: list[list[int]] = []

    async def ask(authors: list[int]) -> set[int]:
        asked.append(authors)
        return {a for a in authors if a % 2 == 0}

    view = Followees(celebrities=[100], ask=ask, version="3")
    page = FeedPage(
        refs=[FeedRef(9, 2), FeedRef(8, 3)],
        complete=True,
        exhausted=False,
        ttl_seconds=60,
        celebrities=[100],
        following_version="3",
        followed=frozenset({2}),
    )
    view.learn(page)
    assert await view.check([2, 3, 100]) == {2, 100}  # from the page and the celebrity set
    assert asked == []
    assert await view.check([3, 4, 5]) == {4}
    assert await view.check([4, 5]) == {4}  # remembered
    assert asked == [[4, 5]]
    view.learn(replace(page, followed=None))  # the followee set was gone: nothing learnt
    assert await view.check([6]) == {6} and asked[-1] == [6]


# Conversations and retweets.

REPLIER, PARENT = 4, 5


def reply_to(ref: FeedRef, parent_author: int) -> Tweet:
    return replace(doc(ref), in_reply_to=(parent_author, 1))


def retweet_of(ref: FeedRef, original: FeedRef) -> Tweet:
    return replace(doc(ref), text="", retweet_of=(original.author_id, original.tweet_id))


def test_a_reply_shows_to_those_who_follow_both_or_are_one_of_them() -> None:
    answer = reply_to(FeedRef(9, REPLIER), PARENT)
    assert visibility.reply_allowed(VIEWER, answer, followed={PARENT})
    assert not visibility.reply_allowed(VIEWER, answer, followed=set())
    assert visibility.reply_allowed(PARENT, answer, followed=set())  # the one replied to
    assert visibility.reply_allowed(REPLIER, answer, followed=set())  # the replier
    own_thread = reply_to(FeedRef(9, REPLIER), REPLIER)
    assert visibility.reply_allowed(VIEWER, own_thread, followed=set())
    assert visibility.reply_allowed(VIEWER, doc(FeedRef(9, REPLIER)), followed=set())
    followers = [VIEWER, PARENT, STRANGER]
    assert visibility.reply_audience(answer, followers, {VIEWER}) == [VIEWER, PARENT]
    assert visibility.reply_audience(own_thread, followers, set()) == followers
    assert visibility.parent_authors(VIEWER, [answer, own_thread, None]) == [REPLIER, PARENT]


def test_a_retweet_shows_its_original_once_at_the_earliest_entry() -> None:
    original = FeedRef(10, STRANGER)
    first, second = FeedRef(20, FOLLOWED), FeedRef(30, REPLIER)
    documents = [retweet_of(second, original), retweet_of(first, original)]
    shown = visibility.decide(
        VIEWER, [second, first], documents, {(STRANGER, 10): doc(original)}, []
    )
    assert list(shown) == [first]
    assert shown[first].tweet.tweet_id == 10 and shown[first].retweeted_by == FOLLOWED
    superseded: set[FeedRef] = set()  # the later entry: passed over (kept cached), not hidden
    visibility.decide(
        VIEWER, [second, first], documents, {(STRANGER, 10): doc(original)}, [], superseded
    )
    assert superseded == {second}
    # The original's own entry is the earliest of all.
    shown = visibility.decide(
        VIEWER,
        [second, original],
        [documents[0], doc(original)],
        {(STRANGER, 10): doc(original)},
        [],
    )
    assert list(shown) == [original] and shown[original].retweeted_by is None
    # An original gone (or missing) hides every retweet of it.
    gone = {(STRANGER, 10): doc(original, deleted=True)}
    assert visibility.decide(VIEWER, [second, first], documents, gone, []) == {}
    assert visibility.decide(VIEWER, [second, first], documents, {}, []) == {}


def test_a_rebuilt_feed_keeps_every_entry_shows_each_original_once_and_the_reply_rule() -> None:
    original = FeedRef(10, FOLLOWED)
    refs = [FeedRef(40, REPLIER), FeedRef(30, FOLLOWED), FeedRef(20, REPLIER), original]
    documents = [
        reply_to(refs[0], PARENT),
        retweet_of(refs[1], FeedRef(5, STRANGER)),
        retweet_of(refs[2], FeedRef(5, STRANGER)),
        doc(original),
    ]
    built = visibility.rebuilt_feed(VIEWER, refs, documents, followed={FOLLOWED})
    assert built.entries == refs[1:]  # the reply fails the rule; both retweets are kept
    assert built.shown == [refs[2], original]  # the older retweet shows
    assert built.originals == {refs[1]: FeedRef(5, STRANGER), refs[2]: FeedRef(5, STRANGER)}
    built = visibility.rebuilt_feed(VIEWER, refs, documents, followed={FOLLOWED, PARENT})
    assert built.shown == [refs[0], refs[2], original]


def test_a_page_shows_an_original_once_across_rounds() -> None:
    original = doc(FeedRef(10, STRANGER))
    fill = visibility.PageFill(want=3, cursor=None, shown=[], hidden=[])
    first = [FeedRef(30, FOLLOWED)]
    fill.take(first, {first[0]: visibility.Shown(original, retweeted_by=FOLLOWED)})
    later = [FeedRef(20, REPLIER), FeedRef(15, FOLLOWED)]
    shown = {
        later[0]: visibility.Shown(original, retweeted_by=REPLIER),
        later[1]: visibility.Shown(doc(later[1])),
    }
    fill.take(later, shown)
    assert [ref for ref, _ in fill.shown] == [first[0], later[1]]
    assert fill.hidden == []  # skipped, not reclaimed: the feed keeps the entry
