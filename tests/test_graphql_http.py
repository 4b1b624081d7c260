"""GraphQL over HTTP as the spec asks (web/graphql_http.py): media type negotiation, status
codes and bodies of request errors, mutations over GET; and the spec's own audit suite
(npm `graphql-http`, `auditServer`) run against the live API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.gql import gql, sign_up
from web.graphql_http import negotiate

CONFORMANCE = Path(__file__).parent / "conformance"
NPM_TIMEOUT_SECONDS = 600
AUDIT_TIMEOUT_SECONDS = 120
JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


@pytest.fixture(scope="session")
def audit_script() -> Path:
    """tests/conformance/audit.mjs with its packages installed from the committed lockfile.
    Without node and npm the audit is skipped locally, and fails in CI (CI=true)."""
    if not (shutil.which("node") and shutil.which("npm")):
        message = "node and npm are needed for the GraphQL-over-HTTP audit"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    installed = CONFORMANCE / "node_modules" / ".package-lock.json"
    lockfile = CONFORMANCE / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lockfile.stat().st_mtime:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=CONFORMANCE,
            check=True,
            timeout=NPM_TIMEOUT_SECONDS,
        )
    return CONFORMANCE / "audit.mjs"


def test_graphql_over_http_audit_passes_every_item(audit_script: Path, api_url: str) -> None:
    """Every audit, MUST, SHOULD and MAY alike, is `ok`: no error, no warning, no notice."""
    run = subprocess.run(
        ["node", audit_script.name, f"{api_url}/graphql"],
        cwd=audit_script.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=AUDIT_TIMEOUT_SECONDS,
    )
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(results) > 50, run.stdout  # the whole suite ran
    failed = [
        f"{r['status']} {r['id']} {r['name']}: {r['reason']}"
        for r in results
        if r["status"] != "ok"
    ]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"application/json, {GRAPHQL_RESPONSE_JSON};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, */*", GRAPHQL_RESPONSE_JSON),
        ("text/html,application/xhtml+xml,*/*;q=0.8", JSON),
        ("application/json;q=0, */*", GRAPHQL_RESPONSE_JSON),
        ("APPLICATION/JSON; charset=utf-8", JSON),
        ("application/json;q=zero, */*;q=0.1", JSON),
        ("text/html", None),
        ("application/json;q=0", None),
        ("*/*;q=0", None),
    ],
)
def test_accept_negotiation(accept: str | None, media_type: str | None) -> None:
    assert negotiate(accept) == media_type


BAD_REQUESTS = {
    "does not parse": ({"query": "{"}, "GRAPHQL_VALIDATION_FAILED"),
    "does not validate": ({"query": "{ noSuchField }"}, "GRAPHQL_VALIDATION_FAILED"),
    "several operations, none named": (
        {"query": 'query A { viewer { id } } query B { user(username: "x") { id } }'},
        "BAD_REQUEST",
    ),
    "variables do not coerce": (
        {"query": "query($u: String!) { user(username: $u) { id } }", "variables": {"u": None}},
        "BAD_USER_INPUT",
    ),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
async def test_request_errors_are_4xx_without_data_under_graphql_response_json(
    client: httpx.AsyncClient, case: str
) -> None:
    body, code = BAD_REQUESTS[case]
    strict = await client.post("/graphql", json=body, headers={"Accept": GRAPHQL_RESPONSE_JSON})
    assert strict.status_code == 400
    assert strict.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    assert "data" not in strict.json()
    assert [e["extensions"]["code"] for e in strict.json()["errors"]] == [code]
    # application/json, what existing clients get (httpx sends */*): 200 and data: null.
    legacy = await client.post("/graphql", json=body)
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == JSON
    assert legacy.json()["data"] is None
    assert [e["extensions"]["code"] for e in legacy.json()["errors"]] == [code]


async def test_field_errors_keep_200_and_data_under_graphql_response_json(
    client: httpx.AsyncClient,
) -> None:
    """Execution started: partial data and field errors are a 200, as for application/json."""
    response = await client.post(
        "/graphql",
        json={"query": '{ me: user(username: "nobody") { id } viewer { id } }'},
        headers={"Accept": GRAPHQL_RESPONSE_JSON},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    body = response.json()
    assert "data" in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


async def test_mutation_over_get_is_405_and_changes_nothing(client: httpx.AsyncClient) -> None:
    mutation = 'mutation { signUp(username: "mallory", password: "long enough pw", displayName: "M") { token } }'  # noqa: E501
    for accept in (JSON, GRAPHQL_RESPONSE_JSON):
        response = await client.get(
            "/graphql", params={"query": mutation}, headers={"Accept": accept}
        )
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.headers["content-type"] == accept
        assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    assert (await gql(client, '{ user(username: "mallory") { id } }'))["user"] is None
    head = await client.head("/graphql", params={"query": "{ __typename }"})
    assert (head.status_code, head.headers["allow"]) == (405, "GET, POST")
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):  # coded too, not a bare text 405
        other = await client.request(method, "/graphql", json={"query": "{ __typename }"})
        assert (other.status_code, other.headers["allow"]) == (405, "GET, POST"), method
        assert other.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    # Queries over GET still work.
    query = await client.get("/graphql", params={"query": "{ __typename }"})
    assert (query.status_code, query.json()) == (200, {"data": {"__typename": "Query"}})


async def test_unacceptable_accept_is_406_before_anything_runs(
    client: httpx.AsyncClient,
) -> None:
    token, _ = await sign_up(client, "alice")
    response = await client.post(
        "/graphql",
        json={"query": 'mutation { createTweet(text: "never") { id } }'},
        headers={"Accept": "text/html", "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"
    tweets = await gql(
        client, '{ user(username: "alice") { tweets(first: 5) { edges { cursor } } } }'
    )
    assert tweets["user"]["tweets"]["edges"] == []


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        ('{"query": "{ __typename', {"Content-Type": JSON}),  # not JSON
        ('{"query": "{ __typename }"}', {"Content-Type": "text/plain"}),  # not a GraphQL body
        ('{"query": 5}', {"Content-Type": JSON}),  # query not a string
        ('{"query": "{ __typename }", "variables": []}', {"Content-Type": JSON}),
        *((body, {"Content-Type": JSON}) for body in ('"x"', "1", "null", "true")),  # no object
        ('{"query": "{ __typename }", "operationName": "\\ud800"}', {"Content-Type": JSON}),
    ],
)
async def test_malformed_http_requests_get_coded_400s(
    client: httpx.AsyncClient, content: str, headers: dict[str, str]
) -> None:
    """Refused before GraphQL runs: a GraphQL response with a coded error, not plain text."""
    for accept in (JSON, GRAPHQL_RESPONSE_JSON):
        response = await client.post(
            "/graphql", content=content, headers={**headers, "Accept": accept}
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == accept
        body = response.json()
        assert "data" not in body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_REQUEST"]


async def test_a_document_of_several_operations_runs_only_the_named_one(
    client: httpx.AsyncClient,
) -> None:
    """The spec's GetOperation: with operationName the named operation runs; without it the
    request is refused, also once the document is cached (it validated with a name before)."""
    two = 'query A { user(username: "ann") { username } } query B { viewer { id } }'
    await sign_up(client, "ann")
    named = await client.post("/graphql", json={"query": two, "operationName": "A"})
    assert named.json() == {"data": {"user": {"username": "ann"}}}
    unnamed = await client.post("/graphql", json={"query": two})
    assert "data" not in unnamed.json() or unnamed.json()["data"] is None
    assert [e["extensions"]["code"] for e in unnamed.json()["errors"]] == ["BAD_REQUEST"]
