"""The whole app with its documents on a real 3-master Redis Cluster."""

from __future__ import annotations

from dataclasses import replace

import httpx

from settings import Settings
from tests.conftest import RedisServer
from tests.gql import DELETE_TWEET, TIMELINE, TWEET, gql, sign_up, tweet
from tests.servers import serve_api

FOLLOW = "mutation($id: ID!) { follow(userId: $id) { followersCount } }"


async def test_accounts_and_tweets_on_a_cluster(
    settings: Settings, redis_cluster: list[RedisServer]
) -> None:
    for node in redis_cluster:
        node.client().flushall()
    on_cluster = replace(
        settings, documents_redis_url=redis_cluster[1].url, documents_redis_cluster=True
    )
    with serve_api(on_cluster) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            users = {name: await sign_up(client, name) for name in ["ann", "ben", "cy", "dee"]}
            created = {
                name: await tweet(client, token, f"hi from {name}")
                for name, (token, _) in users.items()
            }
            await gql(client, FOLLOW, {"id": users["ben"][1]}, token=users["ann"][0])
            aliases = " ".join(
                f'{name}: tweet(id: "{t["id"]}") {{ text author {{ username }} }}'
                for name, t in created.items()
            )
            found = await gql(client, f"{{ {aliases} }}")
            assert {k: v["author"]["username"] for k, v in found.items()} == {
                name: name for name in users
            }
            page = await gql(client, TIMELINE, {"u": "cy", "first": 10})
            assert [e["node"]["text"] for e in page["user"]["tweets"]["edges"]] == ["hi from cy"]
            await gql(client, DELETE_TWEET, {"id": created["cy"]["id"]}, token=users["cy"][0])
            assert (await gql(client, TWEET, {"id": created["cy"]["id"]}))["tweet"] is None
    homes = set()
    for index, node in enumerate(redis_cluster):
        if node.client().dbsize():
            homes.add(index)
    assert len(homes) >= 2  # four users' keys did not all land on one node


FEED_STATE = """
query { feed(first: 10) { edges { node { text likeCount viewerHasLiked viewerHasRetweeted } } } }
"""


async def test_a_feed_page_with_the_viewers_state_on_a_cluster(
    settings: Settings, redis_cluster: list[RedisServer]
) -> None:
    """The page's documents span nodes while the viewer's likes sit on the viewer's node: the
    state is read beside the MGET and lands on the right tweets."""
    for node in redis_cluster:
        node.client().flushall()
    on_cluster = replace(
        settings, documents_redis_url=redis_cluster[1].url, documents_redis_cluster=True
    )
    with serve_api(on_cluster) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            reader, _ = await sign_up(client, "reader")
            for name in ["ann", "ben", "cy", "dee"]:
                token, user_id = await sign_up(client, name)
                posted = await tweet(client, token, f"hi from {name}")
                await gql(client, FOLLOW, {"id": user_id}, token=reader)
                if name in {"ben", "dee"}:
                    like = "mutation($id: ID!) { like(tweetId: $id) { likeCount } }"
                    await gql(client, like, {"id": posted["id"]}, token=reader)
            nodes = [
                e["node"] for e in (await gql(client, FEED_STATE, token=reader))["feed"]["edges"]
            ]
            assert {n["text"]: (n["viewerHasLiked"], n["likeCount"]) for n in nodes} == {
                "hi from ann": (False, 0),
                "hi from ben": (True, 1),
                "hi from cy": (False, 0),
                "hi from dee": (True, 1),
            }
            assert not any(n["viewerHasRetweeted"] for n in nodes)
