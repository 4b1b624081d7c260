"""Assemble the schema with its extensions."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
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

from schema.errors import coded_result
from schema.limits import max_query_bytes_rule
from schema.root import Mutation, Query, Subscription
from schema.unicode_input import RejectLoneSurrogates

QUERY_CACHE_SIZE = 1024


class Schema(strawberry.Schema):
    """Every result leaves with coded errors (see schema.errors.coded): translated here, at
    the boundary, so that errors raised anywhere (parsing, validation, resolvers, extensions)
    are covered."""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return coded_result(await super().execute(*args, **kwargs))

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        return _coded(await super().subscribe(*args, **kwargs))

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        """What the WebSocket transport runs, for subscriptions and queries alike."""
        return _coded(await super().stream(*args, **kwargs))

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Silence strawberry's log-every-error: `coded` logs the unexpected ones, and a
        client's bad input is not worth a traceback."""


def _coded(result: Any) -> Any:
    """A single result, or a stream of them, with coded errors."""
    if isinstance(result, AsyncIterator):
        return _coded_stream(result)
    return coded_result(result)


async def _coded_stream(results: AsyncIterator[Any]) -> AsyncGenerator[Any, None]:
    async for result in results:
        yield coded_result(result)


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
        lambda: QueryDepthLimiter(max_depth=max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
        lambda: MaxTokensLimiter(max_token_count=max_query_tokens),
        lambda: AddValidationRules([max_query_bytes_rule(max_query_bytes)]),
        # Clients send the same few operations over and over: parse and validate each once.
        lambda: ParserCache(maxsize=QUERY_CACHE_SIZE),
        lambda: ValidationCache(maxsize=QUERY_CACHE_SIZE),
        RejectLoneSurrogates,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return Schema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions)
