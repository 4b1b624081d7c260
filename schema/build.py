"""Assemble the schema with its extensions."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import QueryDepthLimiter

from schema.errors import CodedErrors
from schema.root import Mutation, Query, Subscription


class Schema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Silence strawberry's log-every-error: `CodedErrors` logs the unexpected ones, and a
        client's bad input is not worth a traceback."""


def build_schema(*, max_query_depth: int) -> strawberry.Schema:
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[CodedErrors, lambda: QueryDepthLimiter(max_depth=max_query_depth)],
    )
