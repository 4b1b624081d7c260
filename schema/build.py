"""Assemble the schema with its extensions."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import strawberry
from graphql import ASTValidationRule
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.types.execution import PreExecutionError

from resolvers.errors import coded_result
from schema.document_cache import CachedDocuments, DocumentCache
from schema.fragment_expansion import FragmentExpansionLimit
from schema.leaf_fields import LeafFieldExecutor
from schema.limits import graph_call_slots, query_cost_rule, query_too_large
from schema.operation_choice import OperationNameRequired
from schema.root import MEDIA_TYPES, Mutation, Query, Subscription
from schema.unicode_input import RejectLoneSurrogates
from social.errors import BadCredentials

DOCUMENT_CACHE_SIZE = 1024
DOCUMENT_CACHE_TEXT_CHARS = 1 << 20  # of query text: at most ~30 MB of parsed documents
Rules = tuple[type[ASTValidationRule], ...]


class Schema(strawberry.Schema):
    """Every result leaves with coded errors (see resolvers.errors.coded): translated here, at
    the boundary, so that errors raised anywhere (parsing, validation, resolvers, extensions)
    are covered. Operation text over `max_query_bytes` is refused here, before parsing, on every
    transport."""

    def __init__(self, *, max_query_bytes: int, document_cache: DocumentCache, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_query_bytes = max_query_bytes
        self.document_cache = document_cache

    async def execute(self, query: str | None, *args: Any, **kwargs: Any) -> Any:
        if (error := query_too_large(query, self.max_query_bytes)) is not None:
            return PreExecutionError(data=None, errors=[error])
        return coded_result(await super().execute(query, *args, **kwargs))

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        return _coded(await super().subscribe(*args, **kwargs))

    async def stream(self, query: str | None, *args: Any, **kwargs: Any) -> Any:
        """What the WebSocket transport runs, for subscriptions and queries alike."""
        if (error := query_too_large(query, self.max_query_bytes)) is not None:
            return _single(PreExecutionError(data=None, errors=[error]))
        return _coded(await super().stream(query, *args, **kwargs))

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


async def _single(result: Any) -> AsyncGenerator[Any, None]:
    yield result


class OperationLimits(SchemaExtension):
    """Adds the validation rules for this caller (anonymous callers get the lower cost limit)
    and caps the graph calls the operation may have in flight. The rule tuples are built once
    per schema so the document cache keys on the same rules every time."""

    def __init__(self, *, anonymous: Rules, authenticated: Rules, graph_calls: int) -> None:
        self.anonymous = anonymous
        self.authenticated = authenticated
        self.graph_calls = graph_calls

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        rules = self.authenticated if _signed_in(context.context) else self.anonymous
        context.validation_rules = context.validation_rules + rules
        with graph_call_slots(self.graph_calls):
            yield


def _signed_in(context: Any) -> bool:
    """Whether the request carries a well-signed, unexpired token (no I/O: a revoked token is
    refused later by the resolvers; here it only buys the higher cost limit)."""
    claims = getattr(context, "claims", None)
    if claims is None:
        return False
    try:
        claims()
    except BadCredentials:
        return False
    return True


def build_schema(
    *,
    max_query_depth: int,
    max_aliases: int = 30,
    max_query_tokens: int = 2000,
    max_query_bytes: int = 20_000,
    max_query_cost: int = 5000,
    max_query_cost_anonymous: int = 1000,
    max_page_size: int = 100,
    max_graph_calls_per_request: int = 4,
    introspection: bool = True,
) -> strawberry.Schema:
    """The schema with its limits; every limit refuses with a coded error before execution."""
    common: Rules = (max_depth_rule(max_query_depth, None), max_aliases_rule(max_aliases))
    anonymous = (*common, query_cost_rule(max_query_cost_anonymous, max_page_size))
    authenticated = (*common, query_cost_rule(max_query_cost, max_page_size))
    cache = DocumentCache(DOCUMENT_CACHE_SIZE, DOCUMENT_CACHE_TEXT_CHARS)
    extensions: list = [
        lambda: OperationLimits(
            anonymous=anonymous,
            authenticated=authenticated,
            graph_calls=max_graph_calls_per_request,
        ),
        lambda: MaxTokensLimiter(max_token_count=max_query_tokens),
        RejectLoneSurrogates,  # variables that are not Unicode: BAD_USER_INPUT
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    extensions.append(lambda: CachedDocuments(cache))
    extensions.append(FragmentExpansionLimit)  # after the cache: a hit is not counted again
    extensions.append(OperationNameRequired)
    return Schema(
        execution_context_class=LeafFieldExecutor,
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=MEDIA_TYPES,
        extensions=extensions,
        max_query_bytes=max_query_bytes,
        document_cache=cache,
    )
