"""Home feeds end to end: the real app, a real Dramatiq worker, Redis and FalkorDB."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from devstack.servers import ManagedProcess
from resolvers.ids import parse_tweet_global_id, parse_user_global_id
from settings import Settings
from social.fanout import FanOut, FollowStateMoved
from social.ports import FanoutAction
from storage.feeds import FeedCache, FeedRef, feed_key
from storage.presence import Presence, live_channel
from storage.redis_clients import DocumentsRedis
from storage.tweets import Tweet, TweetStore, tweet_key
from tests.gql import (
    DELETE_TWEET,
    FEED,
    FOLLOW,
    LOG_IN,
    PASSWORD,
    UNFOLLOW,
    gql,
    gql_error,
    read_feed,
    sign_up,
    tweet,
)
from tests.servers import queues_idle, run_worker, serve_api, wait_until
from wiring import fan_out_jobs, open_jobs, open_stores

FEED_QUEUES = ("fanout", "feeds")


@pytest.fixture
async def jobs(settings: Settings) -> AsyncIterator[FanOut]:
    """What actors run, in this process: a test runs a job itself, step by step."""
    stores, queue = open_stores(settings), open_jobs(settings)
    yield fan_out_jobs(settings, stores, queue)
    await stores.close()
    queue.close()


class Pause:
    """Holds the first call of an async method at its start until `resume()`. Works across
    event loops (the API serves on its own loop, in a thread), without blocking either."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> None:
        self._reached = threading.Event()
        self._resume = threading.Event()
        real = getattr(owner, name)

        async def paused(*args: object, **kwargs: object) -> object:
            if not self._reached.is_set():
                self._reached.set()
                await asyncio.to_thread(self._resume.wait)
            return await real(*args, **kwargs)

        monkeypatch.setattr(owner, name, paused)

    async def reached(self) -> None:
        assert await asyncio.to_thread(self._reached.wait, 30), "the paused call never came"

    def resume(self) -> None:
        self._resume.set()


async def idle(settings: Settings) -> None:
    """Wait until the worker has processed every feed job."""
    await asyncio.to_thread(wait_until, lambda: queues_idle(settings, FEED_QUEUES), 30)


async def users(client: httpx.AsyncClient, *names: str) -> dict[str, tuple[str, str]]:
    return {name: await sign_up(client, name) for name in names}


async def test_feed_merges_followees_newest_first_and_pages_cleanly(
    client: httpx.AsyncClient, settings: Settings, worker: ManagedProcess
) -> None:
    u = await users(client, "ann", "bob", "cat", "dan")
    for followee in ("bob", "cat"):
        await gql(client, FOLLOW, {"id": u[followee][1]}, token=u["ann"][0])
    expected = []
    for i in range(7):
        for name in ("bob", "cat", "dan", "ann"):  # dan is not followed
            await tweet(client, u[name][0], f"{name} {i}")
            if name != "dan":
                expected.append(f"{name} {i}")
    await idle(settings)
    assert await read_feed(client, u["ann"][0], first=3) == expected[::-1]
    code, _ = await gql_error(client, FEED, {"first": 5})
    assert code == "UNAUTHENTICATED"
    code, _ = await gql_error(client, FEED, {"first": 101}, token=u["ann"][0])
    assert code == "BAD_USER_INPUT"
    code, _ = await gql_error(client, FEED, {"first": 5, "after": "bad"}, token=u["ann"][0])
    assert code == "BAD_USER_INPUT"


async def test_fan_out_reaches_active_feeds_and_skips_inactive(
    client: httpx.AsyncClient, settings: Settings, feeds: FeedCache, worker: ManagedProcess
) -> None:
    u = await users(client, "ann", "bob", "dee")
    for follower in ("ann", "dee"):
        await gql(client, FOLLOW, {"id": u["bob"][1]}, token=u[follower][0])
    assert await read_feed(client, u["ann"][0]) == []  # ann is active now; dee never read
    posted = await tweet(client, u["bob"][0], "fresh")
    _, tweet_id = parse_tweet_global_id(posted["id"])
    ann, dee = (parse_user_global_id(u[name][1]) for name in ("ann", "dee"))
    await idle(settings)
    assert tweet_id in {r.tweet_id for r in await feeds.members(ann)}  # pushed, not pulled
    assert not await feeds.client.exists(feed_key(dee))  # nothing pushed to the inactive
    assert await read_feed(client, u["dee"][0]) == ["fresh"]  # miss path on return
    assert await feeds.client.exists(feed_key(dee))


async def test_celebrities_are_merged_at_read_time(
    settings: Settings, feeds: FeedCache, tmp_path
) -> None:
    low = replace(settings, celebrity_followers=2, celebrity_refresh_seconds=0.2)
    with serve_api(low) as url, run_worker(low, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            u = await users(client, "star", "ann", "fan2", "fan3")
            for fan in ("ann", "fan2", "fan3"):
                await gql(client, FOLLOW, {"id": u["star"][1]}, token=u[fan][0])
            assert await read_feed(client, u["ann"][0]) == []  # ann's feed is cached
            await tweet(client, u["star"][0], "from the star")  # 3 followers > 2
            await idle(low)
            ann = parse_user_global_id(u["ann"][1])
            assert await feeds.members(ann) == []  # nothing was pushed...
            # ...yet the tweet is there: the flag change dropped ann's cached followee set.
            assert await read_feed(client, u["ann"][0]) == ["from the star"]
            stats = await feeds.client.hgetall("fanout:stats")
            assert int(stats.get(b"inserts", 0)) == 0


async def test_follow_merges_unfollow_hides_delete_disappears(
    client: httpx.AsyncClient, settings: Settings, feeds: FeedCache, worker: ManagedProcess
) -> None:
    u = await users(client, "ann", "bob")
    ann = parse_user_global_id(u["ann"][1])
    await tweet(client, u["bob"][0], "before the follow")
    assert await read_feed(client, u["ann"][0]) == []
    await gql(client, FOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])
    assert await read_feed(client, u["ann"][0]) == ["before the follow"]  # merged inline
    await gql(client, UNFOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])
    assert await read_feed(client, u["ann"][0]) == []  # hidden at once
    await idle(settings)
    assert await feeds.members(ann) == []  # and reclaimed by reconcile

    await gql(client, FOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])
    doomed = await tweet(client, u["bob"][0], "soon deleted")
    await idle(settings)
    assert await read_feed(client, u["ann"][0]) == ["soon deleted", "before the follow"]
    await gql(client, DELETE_TWEET, {"id": doomed["id"]}, token=u["bob"][0])
    assert await read_feed(client, u["ann"][0]) == ["before the follow"]
    await idle(settings)
    _, doomed_id = parse_tweet_global_id(doomed["id"])
    assert doomed_id not in {r.tweet_id for r in await feeds.members(ann)}


async def test_unfollow_or_delete_racing_the_fan_out_never_shows(
    client: httpx.AsyncClient, settings: Settings, worker: ManagedProcess
) -> None:
    u = await users(client, "ann", "bob", "cat")
    for followee in ("bob", "cat"):
        await gql(client, FOLLOW, {"id": u[followee][1]}, token=u["ann"][0])
    assert await read_feed(client, u["ann"][0]) == []
    for i in range(5):
        await tweet(client, u["bob"][0], f"bob {i}")
    await gql(client, UNFOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])  # while fanning out
    posted = await tweet(client, u["cat"][0], "cat gone")
    await gql(client, DELETE_TWEET, {"id": posted["id"]}, token=u["cat"][0])  # likewise
    await tweet(client, u["cat"][0], "cat stays")
    for _ in range(3):  # while the workers catch up: "cat stays" may not be there yet
        assert set(await read_feed(client, u["ann"][0], first=2)) <= {"cat stays"}
    await idle(settings)
    assert await read_feed(client, u["ann"][0], first=2) == ["cat stays"]


async def test_read_your_own_tweet_immediately(client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(client, "ann")
    assert await read_feed(client, token) == []
    await tweet(client, token, "mine")
    assert await read_feed(client, token) == ["mine"]  # no worker needed


async def test_push_twice_leaves_one_entry_and_one_live_event(feeds: FeedCache) -> None:
    """A retried delivery batch: the script is idempotent and publishes only on first insert."""
    viewers = [11, 12, 13]
    await feeds.begin_rebuild(11)
    await feeds.finish_rebuild(11, [])
    await feeds.begin_rebuild(12)
    await feeds.finish_rebuild(12, [])  # 13 has no feed: inactive
    await Presence(feeds.client).mark_online(11, 60)
    pubsub = feeds.client.pubsub()
    await pubsub.subscribe(*(live_channel(v) for v in viewers))
    ref = FeedRef(tweet_id=10**17, author_id=99)
    assert await feeds.push_to_feeds(ref, viewers, "event") == 2
    assert await feeds.push_to_feeds(ref, viewers, "event") == 0
    messages = []
    for _ in range(10):  # subscribe confirmations, then whatever was published
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if message is not None:
            messages.append((message["channel"], message["data"]))
    await pubsub.aclose()
    assert messages == [(live_channel(11).encode(), b"event")]
    assert await feeds.members(11) == [ref] and await feeds.members(12) == [ref]
    assert not await feeds.client.exists(feed_key(13))


async def test_concurrent_misses_rebuild_once(client: httpx.AsyncClient) -> None:
    u = await users(client, "ann", "bob")
    await gql(client, FOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])
    for i in range(3):
        await tweet(client, u["bob"][0], f"bob {i}")
    pages = await asyncio.gather(*(read_feed(client, u["ann"][0]) for _ in range(10)))
    assert all(page == ["bob 2", "bob 1", "bob 0"] for page in pages)
    metrics = (await client.get("/metrics")).text
    rebuilds = next(
        line
        for line in metrics.splitlines()
        if line.startswith("feed_rebuild_duration_seconds_count")
    )
    assert rebuilds.endswith(" 1.0"), rebuilds


async def followed_then_unfollowed(client: httpx.AsyncClient) -> tuple[dict, int, int]:
    """ann has a feed holding bob's tweet, merged by a follow, then unfollows bob: the
    reconcile job is queued (no worker runs it here)."""
    u = await users(client, "ann", "bob")
    await tweet(client, u["bob"][0], "bob's")
    assert await read_feed(client, u["ann"][0]) == []  # ann is active: she has a feed
    await gql(client, FOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])
    await gql(client, UNFOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])
    ann, bob = (parse_user_global_id(u[name][1]) for name in ("ann", "bob"))
    return u, ann, bob


async def test_refollow_between_reconcile_check_and_removal_keeps_the_tweets(
    client: httpx.AsyncClient,
    jobs: FanOut,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    u, ann, bob = await followed_then_unfollowed(client)
    pause = Pause(monkeypatch, FeedCache, "unmerge_from_feed")
    job = asyncio.create_task(jobs.reconcile(ann, bob))
    await pause.reached()  # the job has seen the follow gone in the graph
    await gql(client, FOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])  # merges bob's tweet back
    pause.resume()
    with pytest.raises(FollowStateMoved):  # removed nothing; its actor retries it later
        await job
    await jobs.reconcile(ann, bob)  # the retry: finds the follow
    assert await read_feed(client, u["ann"][0]) == ["bob's"]


async def test_refollow_while_a_read_drops_hidden_entries_keeps_the_tweets(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    u, _, _ = await followed_then_unfollowed(client)
    pause = Pause(monkeypatch, FeedCache, "drop_refs")
    read = asyncio.create_task(read_feed(client, u["ann"][0]))
    await pause.reached()  # the read has judged bob's tweet unfollowed
    await gql(client, FOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])
    pause.resume()
    assert await read == []  # what ann followed when she asked
    assert await read_feed(client, u["ann"][0]) == ["bob's"]


@pytest.mark.parametrize("lost", ["revoked", "no account"])
async def test_a_token_that_no_longer_holds_reads_nothing_and_writes_nothing(
    client: httpx.AsyncClient, settings: Settings, feeds: FeedCache, lost: str
) -> None:
    """The feed confirms the token with the page's documents (same round trip); nothing is
    written for the viewer before that: no clean-up, no TTL refresh, no followee cache."""
    u = await users(client, "ann", "bob")
    ann = parse_user_global_id(u["ann"][1])
    await tweet(client, u["bob"][0], "kept")
    doomed = await tweet(client, u["bob"][0], "doomed")
    await gql(client, FOLLOW, {"id": u["bob"][1]}, token=u["ann"][0])
    assert await read_feed(client, u["ann"][0]) == ["doomed", "kept"]  # built
    await gql(client, DELETE_TWEET, {"id": doomed["id"]}, token=u["bob"][0])  # no worker runs
    if lost == "revoked":
        again = await gql(client, LOG_IN, {"username": "ann", "password": PASSWORD})
        await gql(client, "mutation { logOutEverywhere }", token=again["logIn"]["token"])
    else:
        await feeds.client.delete(f"user:{{{ann}}}")
    await feeds.client.expire(feed_key(ann), 100)
    await feeds.client.delete(f"followees:{{{ann}}}", f"following_celebs:{{{ann}}}")
    before = await feeds.members(ann)

    code, _ = await gql_error(client, FEED, {"first": 20}, token=u["ann"][0])
    assert code == "UNAUTHENTICATED"
    assert await feeds.members(ann) == before  # the deleted tweet's entry was not reclaimed
    assert 0 < await feeds.client.ttl(feed_key(ann)) <= 100  # nor the feed's life extended
    assert not await feeds.client.exists(f"followees:{{{ann}}}", f"following_celebs:{{{ann}}}")


async def test_a_losing_concurrent_repeat_of_a_tweet_leaves_a_fan_out_that_ends_quietly(
    client: httpx.AsyncClient, app_documents: DocumentsRedis, jobs: FanOut
) -> None:
    """createTweet queues its fan-out before storing (so no stored tweet lacks one); when two
    requests with one idempotency key race, the loser's store leaves an expiring tombstone under
    its own id, so its job ends at once instead of failing TweetNotStoredYet on every retry."""
    _, author_gid = await sign_up(client, "poster")
    author = parse_user_global_id(author_gid)
    store = TweetStore(app_documents, idempotency_ttl_seconds=60)
    first, second = (Tweet(tweet_id=n, author_id=author, text="once", created_at_ms=1)
                     for n in (10**15, 10**15 + 1))  # fmt: skip
    assert await store.create(first, "same-key", []) == first.tweet_id
    assert await store.create(second, "same-key", []) == first.tweet_id  # the loser
    [kept, lost] = await store.get_many([(author, first.tweet_id), (author, second.tweet_id)])
    assert kept == first and lost is not None and lost.deleted
    assert 0 < await app_documents.ttl(tweet_key(author, second.tweet_id)) <= 60
    assert (await store.timeline_page(author, 10, None)).tweet_ids == [first.tweet_id]
    await jobs.fan_out(author, second.tweet_id, FanoutAction.PUSH)  # before: TweetNotStoredYet
