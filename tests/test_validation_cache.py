"""A repeated operation is validated once per process: the limiter rules are built once per
schema, so the document cache's key (query text, rules) repeats and its hit skips validation."""

from __future__ import annotations

import pytest
import strawberry.schema.schema as strawberry_schema
from graphql import DocumentNode

from schema.build import build_schema


class Anonymous:
    """A context without a token (the schema's limits look for `claims`)."""


async def test_a_repeated_query_is_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    validations: list[str] = []
    validate = strawberry_schema.validate

    def counting(schema: object, document: DocumentNode, rules: object) -> object:
        validations.append(document.loc.source.body if document.loc else "")
        return validate(schema, document, rules)

    monkeypatch.setattr(strawberry_schema, "validate", counting)
    schema = build_schema(max_query_depth=10)
    query = "query Twice { __typename }"
    for _ in range(5):
        result = await schema.execute(query, context_value=Anonymous())
        assert result.errors is None and result.data == {"__typename": "Query"}
    assert validations == [query]
    # A different text is validated (once) too, and a refused one every time it comes.
    for _ in range(2):
        await schema.execute("{ __typename __typename }", context_value=Anonymous())
        refused = await schema.execute("{ noSuchField }", context_value=Anonymous())
        assert refused.errors
    assert validations == [query, "{ __typename __typename }", "{ noSuchField }", "{ noSuchField }"]
