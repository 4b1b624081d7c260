"""Assemble the schema with its extensions."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)

from schema.errors import CodedErrors
from schema.limits import max_query_bytes_rule
from schema.root import Mutation, Query, Subscription

QUERY_CACHE_SIZE = 1024


class Schema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Silence strawberry's log-every-error: `CodedErrors` logs the unexpected ones, and a
        client's bad input is not worth a traceback."""


def build_schema(
    *,
    max_query_depth: int,
    max_aliases: int = 30,
    max_query_tokens: int = 2000,
    max_query_bytes: int = 20_000,
    introspection: bool = True,
) -> strawberry.Schema:
    """The schema with its limits; every limit refuses with a coded error before execution."""
    extensions: list = [
        CodedErrors,
        lambda: QueryDepthLimiter(max_depth=max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
        lambda: MaxTokensLimiter(max_token_count=max_query_tokens),
        lambda: AddValidationRules([max_query_bytes_rule(max_query_bytes)]),
        # Clients send the same few operations over and over: parse and validate each once.
        lambda: ParserCache(maxsize=QUERY_CACHE_SIZE),
        lambda: ValidationCache(maxsize=QUERY_CACHE_SIZE),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return Schema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions)
