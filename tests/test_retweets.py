"""Retweets end to end (the real app, a real worker, Redis and FalkorDB): an original shows once
in a feed however many followees retweet it, on the push path, the rebuild path and the Redis
Cluster topology; undo and delete reach feeds and live viewers; repeats and races make one
retweet; hostile input changes nothing."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx

from devstack.servers import ManagedProcess
from resolvers.ids import parse_tweet_global_id, parse_user_global_id, tweet_global_id
from settings import Settings
from social.fanout import FanOut
from social.ports import FanoutAction
from storage.feeds import (
    FeedCache,
    FeedRef,
    feed_key,
    feed_originals_key,
    open_feed_cache,
)
from storage.redis_clients import DocumentsRedis
from storage.retweets import RetweetStore
from storage.tweet_counts import TweetCounters, TweetCounts, retweets_key
from storage.tweets import Tweet, TweetStore, tweet_key
from tests.conftest import RedisServer
from tests.gql import (
    DELETE_TWEET,
    FEED_ENTRIES,
    FOLLOW,
    REPLY,
    RETWEET,
    TIMELINE,
    TWEET,
    UNDO_RETWEET,
    UNFOLLOW,
    all_pages,
    feed_entries,
    feed_settles,
    gql,
    gql_error,
    reply,
    tweet,
)
from tests.servers import run_worker, serve_api
from tests.test_feed import idle, jobs, users  # noqa: F401 (jobs: a fixture)
from tests.test_feed_cluster import cluster_settings, holders  # noqa: F401 (a fixture)
from tests.test_likes import LIKE, LIKES, UNLIKE, engagement
from tests.test_subscriptions import SUBSCRIBE, next_update, subscribed, wait_subscribed
from tests.test_tweet_updates import SUBSCRIBE as TWEET_UPDATES
from tests.test_tweet_updates import next_message

LIVE = SUBSCRIBE.replace(
    "... on FeedTweet { cursor tweet { id text author { username } } }",
    "... on FeedTweet { cursor retweetedBy { username } tweet { id text } }",
).replace(
    "... on TweetDeleted { tweetId }", "... on TweetDeleted { tweetId retweetedBy { username } }"
)
LINKS = """
query($a: ID!, $q: ID!) {
  a: tweet(id: $a) { inReplyTo { id } }
  q: tweet(id: $q) { quoteOf { id } }
}
"""


async def follow(client: httpx.AsyncClient, u: dict, follower: str, *followees: str) -> None:
    for followee in followees:
        await gql(client, FOLLOW, {"id": u[followee][1]}, token=u[follower][0])


def uid(u: dict, name: str) -> int:
    return parse_user_global_id(u[name][1])


async def retweet_count(counters: TweetCounters, tweet_id: str) -> int:
    [counts] = await counters.read([parse_tweet_global_id(tweet_id)])
    return counts.retweets


async def test_an_original_shows_once_however_many_followees_retweet_it(
    client: httpx.AsyncClient,
    settings: Settings,
    feeds: FeedCache,
    counters: TweetCounters,
    worker: ManagedProcess,
) -> None:
    u = await users(client, "ann", "fay", "bob", "cat", "dan", "eve")
    await follow(client, u, "ann", "bob", "cat", "dan")  # not eve: sees eve through retweets
    await follow(client, u, "fay", "bob", "cat", "eve")  # has eve's tweet itself
    for viewer in ("ann", "fay"):
        assert await feed_entries(client, u[viewer][0]) == []  # cached, so pushes land
    original = await tweet(client, u["eve"][0], "worth sharing")
    await idle(settings)
    for retweeter in ("bob", "cat", "dan"):
        shared = await gql(client, RETWEET, {"id": original["id"]}, token=u[retweeter][0])
        assert shared["retweet"]["id"] == original["id"]  # the original comes back
        await idle(settings)
    assert await feed_entries(client, u["ann"][0]) == [("worth sharing", "bob")]
    assert await feed_entries(client, u["fay"][0]) == [("worth sharing", None)]
    # The cache keeps every entry (the later ones hidden, to show when the earliest leaves).
    assert len(await feeds.members(uid(u, "ann"))) == 3
    assert len(await feeds.members(uid(u, "fay"))) == 3
    assert await retweet_count(counters, original["id"]) == 3
    # The rebuild path (a feed evicted) applies the same rule: the earliest entry wins.
    for viewer in ("ann", "fay"):
        await feeds.client.delete(feed_key(uid(u, viewer)), feed_originals_key(uid(u, viewer)))
    assert await feed_entries(client, u["ann"][0]) == [("worth sharing", "bob")]
    assert await feed_entries(client, u["fay"][0]) == [("worth sharing", None)]
    # The retweeter's own timeline and feed show it as retweeted by them.
    page = await gql(client, TIMELINE, {"u": "cat", "first": 5}, token=u["ann"][0])
    assert [e["node"]["id"] for e in page["user"]["tweets"]["edges"]] == [original["id"]]
    assert await feed_entries(client, u["cat"][0]) == [("worth sharing", "cat")]


async def test_a_repeated_or_concurrent_retweet_makes_one(
    client: httpx.AsyncClient,
    app_documents: DocumentsRedis,
    counters: TweetCounters,
    worker: ManagedProcess,
    settings: Settings,
) -> None:
    u = await users(client, "bob", "eve")
    original = await tweet(client, u["eve"][0], "popular")
    answers = await asyncio.gather(
        *(gql(client, RETWEET, {"id": original["id"]}, token=u["bob"][0]) for _ in range(8))
    )
    assert {a["retweet"]["id"] for a in answers} == {original["id"]}
    assert await retweet_count(counters, original["id"]) == 1
    [raw_retweet_id] = (await app_documents.hgetall(retweets_key(uid(u, "bob")))).values()
    # Retweeting the retweet retweets its original: nothing new.
    retweet_id = tweet_global_id(uid(u, "bob"), int(raw_retweet_id))
    code, _ = await gql_error(client, DELETE_TWEET, {"id": retweet_id}, token=u["bob"][0])
    assert code == "BAD_USER_INPUT"  # a retweet is undone with undoRetweet
    again = await gql(client, RETWEET, {"id": retweet_id}, token=u["bob"][0])
    assert again["retweet"]["id"] == original["id"]
    own = await gql(client, RETWEET, {"id": original["id"]}, token=u["eve"][0])  # allowed
    assert own["retweet"]["id"] == original["id"]
    assert await retweet_count(counters, original["id"]) == 2
    # Undo: once, whatever the repeats.
    undone = await asyncio.gather(
        *(gql(client, UNDO_RETWEET, {"id": original["id"]}, token=u["bob"][0]) for _ in range(4))
    )
    assert {a["undoRetweet"] for a in undone} == {original["id"]}
    assert await retweet_count(counters, original["id"]) == 1
    assert await app_documents.hlen(retweets_key(uid(u, "bob"))) == 0
    await idle(settings)
    page = await gql(client, TIMELINE, {"u": "bob", "first": 5})
    assert page["user"]["tweets"]["edges"] == []


async def test_hostile_retweets_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    app_documents: DocumentsRedis,
    counters: TweetCounters,
    worker: ManagedProcess,
) -> None:
    u = await users(client, "bob", "eve")
    bob = u["bob"][0]
    gone = await tweet(client, u["eve"][0], "soon gone")
    await gql(client, DELETE_TWEET, {"id": gone["id"]}, token=u["eve"][0])
    unknown = tweet_global_id(uid(u, "eve"), 12345)
    for operation, variables, token, expected in [
        (RETWEET, {"id": gone["id"]}, bob, "NOT_FOUND"),
        (RETWEET, {"id": unknown}, bob, "NOT_FOUND"),
        (RETWEET, {"id": "bad"}, bob, "BAD_USER_INPUT"),
        (RETWEET, {"id": u["eve"][1]}, bob, "BAD_USER_INPUT"),  # a user's id, not a tweet's
        (RETWEET, {"id": gone["id"]}, None, "UNAUTHENTICATED"),
        (UNDO_RETWEET, {"id": unknown}, bob, "NOT_FOUND"),
    ]:
        code, _ = await gql_error(client, operation, variables, token=token)
        assert code == expected, (operation, variables)
    assert await retweet_count(counters, gone["id"]) == 0
    assert await app_documents.exists(retweets_key(uid(u, "bob"))) == 0
    # Undoing what was never retweeted (someone else's tweet) changes nothing.
    other = await tweet(client, u["eve"][0], "not retweeted")
    answer = await gql(client, UNDO_RETWEET, {"id": other["id"]}, token=bob)
    assert answer["undoRetweet"] == other["id"]
    assert await counters.read([parse_tweet_global_id(other["id"])]) == [TweetCounts()]


async def test_retweets_count_against_their_rate_limit(settings: Settings, tmp_path) -> None:
    tight = replace(settings, rate_retweets="2/60")
    with serve_api(tight) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            u = await users(client, "bob", "eve")
            posted = [await tweet(client, u["eve"][0], f"t{i}") for i in range(3)]
            for item in posted[:2]:
                await gql(client, RETWEET, {"id": item["id"]}, token=u["bob"][0])
            # A repeat is free; a new one is over the limit.
            await gql(client, RETWEET, {"id": posted[0]["id"]}, token=u["bob"][0])
            code, _ = await gql_error(client, RETWEET, {"id": posted[2]["id"]}, token=u["bob"][0])
            assert code == "RATE_LIMITED"


async def test_undo_and_delete_reach_feeds_and_live_viewers(
    client: httpx.AsyncClient,
    api_url: str,
    settings: Settings,
    feeds: FeedCache,
    counters: TweetCounters,
    worker: ManagedProcess,
) -> None:
    u = await users(client, "ann", "bob", "eve")
    await follow(client, u, "ann", "bob")
    original = await tweet(client, u["eve"][0], "to be shared")
    async with subscribed(api_url, u["ann"][0], query=LIVE) as socket:
        await wait_subscribed(settings, u["ann"][1])
        await gql(client, RETWEET, {"id": original["id"]}, token=u["bob"][0])
        update = await next_update(socket)
        assert update["__typename"] == "FeedTweet"
        assert update["tweet"] == {"id": original["id"], "text": "to be shared"}
        assert update["retweetedBy"] == {"username": "bob"}
        await gql(client, UNDO_RETWEET, {"id": original["id"]}, token=u["bob"][0])
        update = await next_update(socket)
        assert update == {
            "__typename": "TweetDeleted",
            "tweetId": original["id"],
            "retweetedBy": {"username": "bob"},
        }
        await idle(settings)
        assert await feed_entries(client, u["ann"][0]) == []
        assert await feeds.members(uid(u, "ann")) == []
        assert await retweet_count(counters, original["id"]) == 0
        # Retweeted again, then the original is deleted: its retweets go everywhere.
        await gql(client, RETWEET, {"id": original["id"]}, token=u["bob"][0])
        assert (await next_update(socket))["retweetedBy"] == {"username": "bob"}
        await gql(client, DELETE_TWEET, {"id": original["id"]}, token=u["eve"][0])
        update = await next_update(socket)
        assert update["__typename"] == "TweetDeleted"
        assert update["tweetId"] == original["id"]
    await idle(settings)
    assert await feeds.members(uid(u, "ann")) == []  # the cache is cleaned, not just hidden
    assert await feeds.members(uid(u, "bob")) == []
    assert await feed_entries(client, u["ann"][0]) == []
    page = await gql(client, TIMELINE, {"u": "bob", "first": 5})
    assert page["user"]["tweets"]["edges"] == []


async def test_celebrity_retweets_are_merged_at_read_time_once(
    settings: Settings, tmp_path
) -> None:
    low = replace(settings, celebrity_followers=2, celebrity_refresh_seconds=0.2)
    with serve_api(low) as url, run_worker(low, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            u = await users(client, "star", "ann", "fan2", "fan3", "bob", "eve", "gus")
            for fan in ("ann", "fan2", "fan3"):
                await follow(client, u, fan, "star")
            await follow(client, u, "ann", "bob")
            await follow(client, u, "fan3", "eve", "gus")
            await tweet(client, u["star"][0], "flips the flag")  # 3 followers > 2
            assert len(await feed_entries(client, u["fan3"][0])) == 1
            original = await tweet(client, u["eve"][0], "shared by many")
            await idle(low)
            assert len(await feed_entries(client, u["ann"][0])) == 1
            # fan3 has the original deep in the feed, beyond the first read's window.
            newer = [f"gus {i}" for i in range(20)]
            for text in newer:
                await tweet(client, u["gus"][0], text)
            await gql(client, RETWEET, {"id": original["id"]}, token=u["bob"][0])
            await gql(client, RETWEET, {"id": original["id"]}, token=u["star"][0])
            await idle(low)
            # The star's retweet reaches a read once this process's celebrity cache has it
            # (refreshed every CELEBRITY_REFRESH_SECONDS): poll with a deadline.
            wanted = [("shared by many", "star"), ("flips the flag", None)]
            await feed_settles(client, u["fan2"][0], wanted)
            entries = await feed_entries(client, u["ann"][0])
            assert entries == [("shared by many", "bob"), ("flips the flag", None)]
            # The merged celebrity retweet does not show the original again to a viewer whose
            # cached feed has it (below the first read's window).
            assert await feed_entries(client, u["fan3"][0]) == [
                *[(text, None) for text in reversed(newer)],
                ("shared by many", None),
                ("flips the flag", None),
            ]


async def test_the_dedupe_holds_on_a_feed_cluster(
    cluster_settings: Settings,  # noqa: F811 (the fixture imported above)
    feed_cluster: list[RedisServer],
    tmp_path,
) -> None:
    with serve_api(cluster_settings) as url, run_worker(cluster_settings, tmp_path / "w.log"):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            names = ["ann", "bob", "cat", "dan", "eve"]
            u = await users(client, *names)
            await follow(client, u, "ann", "bob", "cat", "dan")
            assert await feed_entries(client, u["ann"][0]) == []
            original = await tweet(client, u["eve"][0], "clustered")
            for retweeter in ("bob", "cat", "dan"):
                await gql(client, RETWEET, {"id": original["id"]}, token=u[retweeter][0])
                await idle(cluster_settings)
            assert await feed_entries(client, u["ann"][0]) == [("clustered", "bob")]
            ann = uid(u, "ann")
            # The retweet index sits with the feed, so the push script decides on one node.
            assert holders(feed_cluster, feed_originals_key(ann)) == holders(
                feed_cluster, feed_key(ann)
            )
            feeds = open_feed_cache(cluster_settings)
            try:
                assert len(await feeds.members(uid(u, "ann"))) == 3  # kept, two hidden
            finally:
                await feeds.client.aclose()


async def test_a_retweets_id_names_its_original_and_an_undone_ones_nothing(
    client: httpx.AsyncClient,
    api_url: str,
    app_documents: DocumentsRedis,
    settings: Settings,
    worker: ManagedProcess,
) -> None:
    """Finding A: a live retweet's id resolves to its original everywhere a tweet id comes in
    (as Twitter's API answers with the original); an undone retweet's id is NOT_FOUND."""
    u = await users(client, "bob", "cat", "eve")
    cat = u["cat"][0]
    original = await tweet(client, u["eve"][0], "the original")
    await gql(client, RETWEET, {"id": original["id"]}, token=u["bob"][0])
    [raw] = (await app_documents.hgetall(retweets_key(uid(u, "bob")))).values()
    retweet_id = tweet_global_id(uid(u, "bob"), int(raw))
    found = await gql(client, TWEET, {"id": retweet_id}, token=cat)
    assert found["tweet"] == {
        "id": original["id"],
        "text": "the original",
        "author": {"username": "eve"},
    }
    # Liking through the retweet likes the original, once however it is named.
    liked = (await gql(client, LIKE, {"id": retweet_id}, token=cat))["like"]
    assert liked == {"id": original["id"], "likeCount": 1, "viewerHasLiked": True}
    again = (await gql(client, LIKE, {"id": original["id"]}, token=cat))["like"]
    assert again["likeCount"] == 1
    listed = await gql(client, LIKES, {"u": "cat", "first": 5}, token=cat)
    assert [e["node"]["id"] for e in listed["user"]["likes"]["edges"]] == [original["id"]]
    answer = await reply(client, cat, "answering the retweet", parent=retweet_id)
    quote = await reply(client, cat, "quoting the retweet", quoted=retweet_id)
    links = await gql(client, LINKS, {"a": answer["id"], "q": quote["id"]}, token=cat)
    assert links["a"]["inReplyTo"]["id"] == original["id"]
    assert links["q"]["quoteOf"]["id"] == original["id"]
    counts = await engagement(client, original["id"], cat)
    assert (counts["replyCount"], counts["quoteCount"], counts["likeCount"]) == (1, 1, 1)
    async with subscribed(
        api_url, cat, query=TWEET_UPDATES, variables={"ids": [retweet_id]}
    ) as socket:
        update = await next_message(socket)
        assert update["payload"]["data"]["tweetUpdates"]["tweetId"] == original["id"]
    # Undone: the retweet's id names nothing, wherever it comes in.
    await gql(client, UNDO_RETWEET, {"id": original["id"]}, token=u["bob"][0])
    assert (await gql(client, TWEET, {"id": retweet_id}, token=cat))["tweet"] is None
    for operation, variables in [
        (LIKE, {"id": retweet_id}),
        (UNLIKE, {"id": retweet_id}),
        (RETWEET, {"id": retweet_id}),
        (UNDO_RETWEET, {"id": retweet_id}),
        (REPLY, {"text": "late answer", "parent": retweet_id, "quoted": None}),
        (REPLY, {"text": "late quote", "parent": None, "quoted": retweet_id}),
    ]:
        code, _ = await gql_error(client, operation, variables, token=cat)
        assert code == "NOT_FOUND", operation
    async with subscribed(
        api_url, cat, query=TWEET_UPDATES, variables={"ids": [retweet_id]}
    ) as socket:
        message = await next_message(socket)
        assert message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    counts = await engagement(client, original["id"], cat)
    assert (counts["retweetCount"], counts["likeCount"]) == (0, 1)


async def test_a_losing_concurrent_retweet_leaves_a_fan_out_that_ends_quietly(
    client: httpx.AsyncClient,
    app_documents: DocumentsRedis,
    jobs: FanOut,  # noqa: F811
) -> None:
    """Finding G: every retweet call queues its fan-out before storing (so no stored retweet
    lacks one); the job of a call that lost the race to an earlier retweet finds its id
    tombstoned and ends at once, instead of failing TweetNotStoredYet on every retry."""
    u = await users(client, "bob", "eve")
    original = await tweet(client, u["eve"][0], "raced")
    shows = parse_tweet_global_id(original["id"])
    bob = uid(u, "bob")
    store = RetweetStore(app_documents)
    first, second = (Tweet(tweet_id=n, author_id=bob, text="", created_at_ms=1, retweet_of=shows)
                     for n in (10**15, 10**15 + 1))  # fmt: skip
    assert await store.create(first) == first.tweet_id
    assert await store.create(first) == first.tweet_id  # a resend: the retweet stays live
    assert await store.create(second) == first.tweet_id  # the loser
    [kept, lost] = await TweetStore(app_documents, idempotency_ttl_seconds=60).get_many(
        [(bob, first.tweet_id), (bob, second.tweet_id)]
    )
    assert kept == first and lost is not None and lost.deleted
    assert 0 < await app_documents.ttl(tweet_key(bob, second.tweet_id)) <= 86400
    async with asyncio.timeout(1):  # before: 5 waits, then TweetNotStoredYet (retried 5 times)
        await jobs.fan_out(bob, second.tweet_id, FanoutAction.PUSH)


async def feed_by_pages(client: httpx.AsyncClient, token: str, first: int) -> list:
    """Every entry of the viewer's feed as (text, retweeter or None), paged `first` at a time."""
    entries, after = [], None
    while True:
        variables = {"first": first, "after": after}
        page = (await gql(client, FEED_ENTRIES, variables, token=token))["feed"]
        for edge in page["edges"]:
            by = edge["retweetedBy"]
            entries.append((edge["node"]["text"], None if by is None else by["username"]))
        if not page["pageInfo"]["hasNextPage"]:
            return entries
        after = page["pageInfo"]["endCursor"]


async def test_a_follow_that_brings_an_original_again_keeps_the_earliest_entry(
    client: httpx.AsyncClient,
    settings: Settings,
    feeds: FeedCache,
    worker: ManagedProcess,
) -> None:
    """Finding B: the follow merge applies the push's rule (the earliest entry of an original
    stays), so an original shows once across pages of any size, whichever follow came first,
    and the cached feed agrees with a rebuild."""
    u = await users(client, "ann", "bob", "cat", "dan", "eve")
    await follow(client, u, "ann", "bob")  # ann has bob's retweet, then follows the author
    await follow(client, u, "dan", "cat")  # dan has the author, then follows the retweeter
    for viewer in ("ann", "dan"):
        assert await feed_entries(client, u[viewer][0]) == []
    x = await tweet(client, u["cat"][0], "X by cat")
    await tweet(client, u["cat"][0], "Y by cat")
    await gql(client, RETWEET, {"id": x["id"]}, token=u["bob"][0])
    await idle(settings)
    assert await feed_entries(client, u["ann"][0]) == [("X by cat", "bob")]
    await follow(client, u, "ann", "cat")
    await follow(client, u, "dan", "bob")
    wanted = [("Y by cat", None), ("X by cat", None)]
    for viewer in ("ann", "dan"):
        for first in (1, 2, 20):
            assert await feed_by_pages(client, u[viewer][0], first) == wanted, (viewer, first)
        assert len(await feeds.members(uid(u, viewer))) == 3  # every entry kept, one hidden
        await feeds.client.delete(feed_key(uid(u, viewer)), feed_originals_key(uid(u, viewer)))
        assert await feed_by_pages(client, u[viewer][0], 1) == wanted  # rebuilt: the same
    # A retweet merged by a follow replaces a later retweet of the same original.
    await follow(client, u, "eve", "dan")
    assert await feed_entries(client, u["eve"][0]) == []
    z = await tweet(client, u["ann"][0], "Z by ann")
    await gql(client, RETWEET, {"id": z["id"]}, token=u["bob"][0])
    await gql(client, RETWEET, {"id": z["id"]}, token=u["dan"][0])
    await idle(settings)
    assert await feed_entries(client, u["eve"][0]) == [("Z by ann", "dan")]
    await follow(client, u, "eve", "bob")
    assert ("Z by ann", "bob") in await feed_by_pages(client, u["eve"][0], 1)
    assert ("Z by ann", "dan") not in await feed_by_pages(client, u["eve"][0], 1)


async def test_a_celebritys_original_shows_once_beside_a_followees_retweet(
    settings: Settings, tmp_path
) -> None:
    """Findings C and D: a celebrity's tweet (merged at read time) and a followee's retweet of
    it (in the cached feed) show once, at the original's own, earlier, place, whatever the
    page size; live, the retweet after the celebrity's tweet makes no second event."""
    low = replace(settings, celebrity_followers=2, celebrity_refresh_seconds=0.2)
    with serve_api(low) as url, run_worker(low, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            u = await users(client, "star", "ann", "fan2", "fan3", "bob")
            for fan in ("ann", "fan2", "fan3"):
                await follow(client, u, fan, "star")
            await follow(client, u, "ann", "bob")
            ann = u["ann"][0]
            await tweet(client, u["star"][0], "flips the flag")  # 3 followers > 2
            await idle(low)
            await feed_settles(client, ann, [("flips the flag", None)])
            x = await tweet(client, u["star"][0], "X by star")
            for i in range(3):
                await tweet(client, u["bob"][0], f"bob {i}")
            await gql(client, RETWEET, {"id": x["id"]}, token=u["bob"][0])
            await idle(low)
            wanted = [
                *[(f"bob {i}", None) for i in (2, 1, 0)],
                ("X by star", None),
                ("flips the flag", None),
            ]
            # Once the process's celebrity cache holds X (CELEBRITY_REFRESH_SECONDS; waited
            # for with one-page reads, so that no paging straddles the refresh), X shows, and
            # only there, whatever the page size.
            async with asyncio.timeout(10):
                while ("X by star", None) not in await feed_entries(client, ann):
                    await asyncio.sleep(0.05)
            for first in (1, 2, 3, 20):
                assert await feed_by_pages(client, ann, first) == wanted, first
            async with subscribed(url, u["ann"][0], query=LIVE) as socket:
                await wait_subscribed(low, u["ann"][1])
                y = await tweet(client, u["star"][0], "Y by star")
                update = await next_update(socket)
                assert (update["tweet"]["id"], update["retweetedBy"]) == (y["id"], None)
                await gql(client, RETWEET, {"id": y["id"]}, token=u["bob"][0])
                await idle(low)
                await tweet(client, u["bob"][0], "after the retweet")
                update = await next_update(socket)  # not Y again, retweeted by bob
                assert update["tweet"]["text"] == "after the retweet", update


async def test_an_authors_own_retweet_shows_their_tweet_once_in_their_timeline(
    client: httpx.AsyncClient, worker: ManagedProcess, settings: Settings
) -> None:
    """Finding I: as on Twitter, a tweet its author retweeted shows once in their timeline, at
    the retweet's place, whatever the page size; undone, it is back at its own place."""
    u = await users(client, "amy", "bob")
    x = await tweet(client, u["amy"][0], "mine")
    for i in range(3):
        await tweet(client, u["amy"][0], f"later {i}")
    await gql(client, RETWEET, {"id": x["id"]}, token=u["amy"][0])
    for first in (1, 2, 10):
        nodes = await all_pages(
            client, TIMELINE, {"u": "amy", "first": first}, lambda d: d["user"]["tweets"]
        )
        assert [n["text"] for n in nodes] == ["mine", "later 2", "later 1", "later 0"], first
    await gql(client, UNDO_RETWEET, {"id": x["id"]}, token=u["amy"][0])
    nodes = await all_pages(
        client, TIMELINE, {"u": "amy", "first": 2}, lambda d: d["user"]["tweets"]
    )
    assert [n["text"] for n in nodes] == ["later 2", "later 1", "later 0", "mine"]


async def same_every_way(
    client: httpx.AsyncClient, feeds: FeedCache, u: dict, viewer: str, wanted: list
) -> None:
    """The viewer's feed is `wanted` in pages of 1 and of 20 (never an original twice), and
    again once the cached feed is evicted and rebuilt (then the rebuilt cache is read)."""
    for first in (1, 20):
        assert await feed_by_pages(client, u[viewer][0], first) == wanted, first
    await feeds.client.delete(feed_key(uid(u, viewer)))
    for first in (20, 1):
        assert await feed_by_pages(client, u[viewer][0], first) == wanted, ("rebuilt", first)


async def test_undoing_the_shown_retweet_lets_another_followees_retweet_show(
    client: httpx.AsyncClient,
    api_url: str,
    settings: Settings,
    feeds: FeedCache,
    worker: ManagedProcess,
) -> None:
    """Finding H: the later retweet of an original the feed shows is kept (hidden), so when the
    retweet that showed it is undone, the original stays, retweeted by the other followee, in
    the cached feed as in a rebuilt one; a live viewer is told both."""
    u = await users(client, "ann", "bob", "cat", "dan")
    await follow(client, u, "ann", "bob", "dan")  # not cat
    assert await feed_entries(client, u["ann"][0]) == []
    x = await tweet(client, u["cat"][0], "X by cat")
    for retweeter in ("bob", "dan"):
        await gql(client, RETWEET, {"id": x["id"]}, token=u[retweeter][0])
        await idle(settings)
    await tweet(client, u["bob"][0], "later by bob")
    await idle(settings)
    await same_every_way(client, feeds, u, "ann", [("later by bob", None), ("X by cat", "bob")])
    async with subscribed(api_url, u["ann"][0], query=LIVE) as socket:
        await wait_subscribed(settings, u["ann"][1])
        await gql(client, UNDO_RETWEET, {"id": x["id"]}, token=u["bob"][0])
        gone = await next_update(socket)
        assert (gone["__typename"], gone["retweetedBy"]) == ("TweetDeleted", {"username": "bob"})
        back = await next_update(socket)  # the entry that shows it now goes live
        assert back["__typename"] == "FeedTweet", back
        assert (back["tweet"]["id"], back["retweetedBy"]) == (x["id"], {"username": "dan"})
    await idle(settings)
    wanted = [("later by bob", None), ("X by cat", "dan")]
    await same_every_way(client, feeds, u, "ann", wanted)
    # Undone too: nothing shows it any more.
    await gql(client, UNDO_RETWEET, {"id": x["id"]}, token=u["dan"][0])
    await idle(settings)
    await same_every_way(client, feeds, u, "ann", [("later by bob", None)])


async def test_unfollowing_whoever_shows_an_original_keeps_another_entry_of_it(
    client: httpx.AsyncClient, settings: Settings, feeds: FeedCache, worker: ManagedProcess
) -> None:
    """Finding H: unfollowing the original's author keeps it through a followee's retweet;
    unfollowing the retweeter whose entry showed it lets the next retweet show it; at once
    (the read that hides the entry lets the next one show on the same page) and after the
    clean-up job, as a rebuild shows it."""
    u = await users(client, "ann", "bob", "cat", "dan", "eve")
    await follow(client, u, "ann", "bob", "cat", "dan")
    assert await feed_entries(client, u["ann"][0]) == []
    x = await tweet(client, u["cat"][0], "X by cat")
    y = await tweet(client, u["eve"][0], "Y by eve")
    await idle(settings)
    for retweeter, original in (("bob", x), ("bob", y), ("dan", y)):
        await gql(client, RETWEET, {"id": original["id"]}, token=u[retweeter][0])
        await idle(settings)
    await same_every_way(client, feeds, u, "ann", [("Y by eve", "bob"), ("X by cat", None)])
    await gql(client, UNFOLLOW, {"id": u["cat"][1]}, token=u["ann"][0])
    wanted = [("Y by eve", "bob"), ("X by cat", "bob")]
    assert await feed_entries(client, u["ann"][0]) == wanted  # before the clean-up job
    await idle(settings)
    await same_every_way(client, feeds, u, "ann", wanted)
    await gql(client, UNFOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])
    # One read (not pages: a clean-up job running between two pages is README's paging gap).
    assert await feed_entries(client, u["ann"][0]) == [("Y by eve", "dan")]
    await idle(settings)
    await same_every_way(client, feeds, u, "ann", [("Y by eve", "dan")])


async def test_deleting_an_original_removes_every_entry_of_it(
    client: httpx.AsyncClient, settings: Settings, feeds: FeedCache, worker: ManagedProcess
) -> None:
    u = await users(client, "ann", "bob", "cat", "dan")
    await follow(client, u, "ann", "bob", "cat", "dan")
    assert await feed_entries(client, u["ann"][0]) == []
    x = await tweet(client, u["cat"][0], "X by cat")
    await tweet(client, u["cat"][0], "kept")
    for retweeter in ("bob", "dan"):
        await gql(client, RETWEET, {"id": x["id"]}, token=u[retweeter][0])
    await idle(settings)
    assert len(await feeds.members(uid(u, "ann"))) == 4  # X, kept, and two hidden retweets
    await gql(client, DELETE_TWEET, {"id": x["id"]}, token=u["cat"][0])
    await idle(settings)
    assert len(await feeds.members(uid(u, "ann"))) == 1  # "kept" only
    assert await feeds.client.hkeys(feed_originals_key(uid(u, "ann"))) == [b"v"]  # index clean
    await same_every_way(client, feeds, u, "ann", [("kept", None)])


async def test_many_retweets_of_many_originals_page_alike_and_show_each_once(
    client: httpx.AsyncClient, settings: Settings, feeds: FeedCache, worker: ManagedProcess
) -> None:
    """Hidden entries never show and never break paging: pages of 1 and of 20 agree, each
    original shows once, at its earliest entry, and a rebuild agrees."""
    names = ["ann", "bob", "cat", "dan", "eve"]
    u = await users(client, *names)
    await follow(client, u, "ann", "bob", "cat", "dan")
    assert await feed_entries(client, u["ann"][0]) == []
    originals = [await tweet(client, u["eve"][0], f"eve {i}") for i in range(4)]
    wanted: list = []
    for i, original in enumerate(originals):
        for retweeter in ("bob", "cat", "dan")[i % 3 :]:
            await gql(client, RETWEET, {"id": original["id"]}, token=u[retweeter][0])
        await tweet(client, u["dan"][0], f"dan {i}")
        wanted[:0] = [(f"dan {i}", None), (f"eve {i}", ("bob", "cat", "dan")[i % 3])]
    await idle(settings)
    # Each original at its earliest retweet (right after the previous "dan" tweet), once.
    await same_every_way(client, feeds, u, "ann", wanted)
    assert len(await feeds.members(uid(u, "ann"))) == 4 + 3 + 2 + 1 + 3


async def test_trimming_the_entry_that_shows_an_original_lets_the_next_show(
    feeds: FeedCache,
) -> None:
    """Trimming to the cap removes the oldest entries through the index (which stays bounded
    with the feed); an original trimmed away shows at the next entry of it."""
    small = FeedCache(feeds.client, feed_max=3, ttl_seconds=3600)
    viewer = 4242
    await small.begin_rebuild(viewer)
    original, plain = FeedRef(10, 7), FeedRef(11, 7)
    first, second = FeedRef(20, 8), FeedRef(21, 9)
    await small.finish_rebuild(
        viewer, [second, first, plain, original], {first: original, second: original}
    )
    assert await small.members(viewer) == [second, first, plain]  # the cap: 3

    async def shown() -> list[FeedRef]:
        return (await small.page(viewer, 10, None)).refs

    assert await shown() == [first, plain]  # the original's own entry was trimmed
    await small.push_to_feeds(FeedRef(30, 7), [viewer], "{}")
    await small.push_to_feeds(FeedRef(31, 7), [viewer], "{}")
    assert await shown() == [FeedRef(31, 7), FeedRef(30, 7), second]
    await small.push_to_feeds(FeedRef(32, 7), [viewer], "{}")
    assert await shown() == [FeedRef(32, 7), FeedRef(31, 7), FeedRef(30, 7)]
    index = await feeds.client.hgetall(feed_originals_key(viewer))
    assert index == {b"v": b"2"}  # nothing left of the trimmed retweets


async def test_a_late_push_that_hides_a_live_retweet_replaces_it_live_as_a_read_shows(
    client: httpx.AsyncClient,
    api_url: str,
    settings: Settings,
    feeds: FeedCache,
    app_documents: DocumentsRedis,
    jobs: FanOut,  # noqa: F811
) -> None:
    """Fan-out jobs finish in any order (run here one by one, in the worst order): dan's
    retweet of X reaches ann first and goes live; bob's earlier retweet, then cat's own X,
    each hide the entry that showed X. Each time the live viewer gets the deletion of the entry
    that stopped showing, then the entry that shows X now, so it ends as a re-read of the feed
    shows: X as cat's own tweet, once."""
    u = await users(client, "ann", "bob", "cat", "dan")
    await follow(client, u, "ann", "bob", "cat", "dan")
    assert await feed_entries(client, u["ann"][0]) == []  # cached, so pushes land
    x = await tweet(client, u["cat"][0], "X by cat")  # no worker: every job waits for us
    for retweeter in ("bob", "dan"):
        await gql(client, RETWEET, {"id": x["id"]}, token=u[retweeter][0])
    store = RetweetStore(app_documents)
    shows = parse_tweet_global_id(x["id"])
    retweet_ids = {name: await store.retweet_of(uid(u, name), shows) for name in ("bob", "dan")}
    assert retweet_ids["bob"] < retweet_ids["dan"]  # bob's is the earlier entry
    ann = uid(u, "ann")
    async with subscribed(api_url, u["ann"][0], query=LIVE) as socket:
        await wait_subscribed(settings, u["ann"][1])
        updates = []
        for author, tweet_id, events in (
            (uid(u, "dan"), retweet_ids["dan"], 1),
            (uid(u, "bob"), retweet_ids["bob"], 2),
            (*shows, 2),
        ):
            await jobs.deliver(author, tweet_id, [ann], FanoutAction.PUSH)
            updates += [await next_update(socket) for _ in range(events)]
        after = await tweet(client, u["cat"][0], "after")
        await jobs.deliver(*parse_tweet_global_id(after["id"]), [ann], FanoutAction.PUSH)
        updates.append(await next_update(socket))  # the next event: nothing came between
    seen = [
        (
            update["__typename"],
            update["tweet"]["id"] if "tweet" in update else update["tweetId"],
            (update["retweetedBy"] or {}).get("username"),
        )
        for update in updates
    ]
    assert seen == [
        ("FeedTweet", x["id"], "dan"),
        ("TweetDeleted", x["id"], "dan"),
        ("FeedTweet", x["id"], "bob"),
        ("TweetDeleted", x["id"], "bob"),
        ("FeedTweet", x["id"], None),
        ("FeedTweet", after["id"], None),
    ]
    # A re-read agrees (and a rebuild too): X as cat's own tweet, once; both retweets kept,
    # hidden.
    assert len(await feeds.members(ann)) == 4
    await same_every_way(client, feeds, u, "ann", [("after", None), ("X by cat", None)])
