"""feedUpdates over a real WebSocket (graphql-transport-ws) with a real worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from devstack.servers import ManagedProcess
from resolvers.ids import parse_user_global_id
from settings import Settings
from storage.presence import presence_key
from storage.redis_clients import open_feed_redis
from tests.gql import DELETE_TWEET, FOLLOW, gql, read_feed, sign_up, tweet
from tests.servers import queues_idle, run_worker, serve_api, wait_until

SUBSCRIBE = """
subscription($after: String) {
  feedUpdates(after: $after) {
    __typename
    ... on FeedTweet { cursor tweet { id text author { username } } }
    ... on TweetDeleted { tweetId }
  }
}
"""


@asynccontextmanager
async def subscribed(
    api_url: str,
    token: str | None,
    after: str | None = None,
    query: str = SUBSCRIBE,
    variables: dict | None = None,
) -> AsyncIterator[ClientConnection]:
    """A socket with a subscription (feedUpdates unless `query` says otherwise; its variables
    are {"after": after} unless given) subscribed as operation "1"."""
    url = api_url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert ack["type"] == "connection_ack"
        message = {
            "query": query,
            "variables": {"after": after} if variables is None else variables,
        }
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": message}))
        yield socket


async def next_update(socket: ClientConnection) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 15))
        if message["type"] == "next":
            assert "errors" not in message["payload"], message
            return message["payload"]["data"]["feedUpdates"]
        assert message["type"] in {"ping", "pong"}, message


async def wait_subscribed(settings: Settings, viewer: str) -> None:
    """The subscription is registered once the viewer's presence key exists."""
    feed_redis = open_feed_redis(settings)
    try:
        key = presence_key(parse_user_global_id(viewer))
        async with asyncio.timeout(10):
            while not await feed_redis.exists(key):
                await asyncio.sleep(0.02)
    finally:
        await feed_redis.aclose()


async def test_live_tweets_deletions_and_replay(
    client: httpx.AsyncClient, api_url: str, settings: Settings, worker: ManagedProcess
) -> None:
    ann, ann_id = await sign_up(client, "ann")
    bob, bob_id = await sign_up(client, "bob")
    await gql(client, FOLLOW, {"id": bob_id}, token=ann)
    async with subscribed(api_url, ann) as socket:
        await wait_subscribed(settings, ann_id)
        posted = await tweet(client, bob, "live from bob")
        update = await next_update(socket)
        assert update["__typename"] == "FeedTweet"
        assert update["tweet"]["text"] == "live from bob"
        assert update["tweet"]["author"] == {"username": "bob"}
        cursor = update["cursor"]
        await gql(client, DELETE_TWEET, {"id": posted["id"]}, token=bob)
        assert await next_update(socket) == {"__typename": "TweetDeleted", "tweetId": posted["id"]}
    # Offline: two more tweets; reconnecting with the cursor replays them, oldest first.
    await tweet(client, bob, "missed 1")
    await tweet(client, bob, "missed 2")
    await asyncio.to_thread(_idle, settings)
    async with subscribed(api_url, ann, after=cursor) as socket:
        texts = [(await next_update(socket))["tweet"]["text"] for _ in range(2)]
        assert texts == ["missed 1", "missed 2"]


def _idle(settings: Settings) -> None:
    wait_until(lambda: queues_idle(settings, ("fanout",)), 30)


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_unauthenticated_socket_is_refused(api_url: str, token: str | None) -> None:
    url = api_url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason.startswith("Unauthorized")


async def test_own_tweets_and_their_deletion_arrive_live_once(
    client: httpx.AsyncClient, api_url: str, settings: Settings, worker: ManagedProcess
) -> None:
    ann, ann_id = await sign_up(client, "ann")
    bob, bob_id = await sign_up(client, "bob")
    await gql(client, FOLLOW, {"id": bob_id}, token=ann)
    await gql(client, FOLLOW, {"id": ann_id}, token=bob)  # ann's tweets are fanned out too
    async with subscribed(api_url, ann) as socket:
        await wait_subscribed(settings, ann_id)
        mine = await tweet(client, ann, "my own")
        update = await next_update(socket)
        assert (update["__typename"], update["tweet"]["id"]) == ("FeedTweet", mine["id"])
        assert update["tweet"]["author"] == {"username": "ann"}
        await asyncio.to_thread(_idle, settings)  # ann's fan-out ran: it sent her nothing more
        await tweet(client, bob, "from bob")
        assert (await next_update(socket))["tweet"]["text"] == "from bob"
        await gql(client, DELETE_TWEET, {"id": mine["id"]}, token=ann)
        assert await next_update(socket) == {"__typename": "TweetDeleted", "tweetId": mine["id"]}


async def test_expired_token_closes_the_socket(settings: Settings, tmp_path: Path) -> None:
    short = replace(settings, token_ttl_seconds=2)
    with serve_api(short) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "ann")
            await read_feed(client, token)
            async with subscribed(url, token) as socket:
                with pytest.raises(ConnectionClosed) as closed:
                    await next_update(socket)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_celebrity_tweets_arrive_live(settings: Settings, tmp_path: Path) -> None:
    low = replace(settings, celebrity_followers=1, celebrity_refresh_seconds=0.2)
    with serve_api(low) as url, run_worker(low, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            star, star_id = await sign_up(client, "star")
            ann, ann_id = await sign_up(client, "ann")
            fan, _ = await sign_up(client, "fan")
            for follower in (ann, fan):
                await gql(client, FOLLOW, {"id": star_id}, token=follower)
            await tweet(client, star, "flips the flag")  # 2 followers > 1: now a celebrity
            await asyncio.to_thread(_idle, low)
            async with subscribed(url, ann) as socket:
                await wait_subscribed(low, ann_id)
                await tweet(client, star, "to my fans")
                update = await next_update(socket)
                assert update["tweet"]["text"] == "to my fans"
