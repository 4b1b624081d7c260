"""Assemble the schema with its extensions."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import ParserCache, QueryDepthLimiter, ValidationCache

from schema.errors import CodedErrors
from schema.root import Mutation, Query, Subscription

QUERY_CACHE_SIZE = 1024


class Schema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Silence strawberry's log-every-error: `CodedErrors` logs the unexpected ones, and a
        client's bad input is not worth a traceback."""


def build_schema(*, max_query_depth: int) -> strawberry.Schema:
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            CodedErrors,
            lambda: QueryDepthLimiter(max_depth=max_query_depth),
            # Clients send the same few operations over and over: parse and validate each once.
            lambda: ParserCache(maxsize=QUERY_CACHE_SIZE),
            lambda: ValidationCache(maxsize=QUERY_CACHE_SIZE),
        ],
    )
