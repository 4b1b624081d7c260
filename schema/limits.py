"""Validation rules that bound what one operation may ask (no I/O)."""

from __future__ import annotations

from graphql import ASTValidationRule, GraphQLError, ValidationContext


def max_query_bytes_rule(max_bytes: int) -> type[ASTValidationRule]:
    """A rule refusing operation text longer than `max_bytes` (UTF-8)."""

    class MaxQueryBytes(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            loc = context.document.loc
            size = len(loc.source.body.encode()) if loc is not None else 0
            if size > max_bytes:
                context.report_error(
                    GraphQLError(f"the query is {size} bytes; at most {max_bytes} are accepted")
                )

    return MaxQueryBytes
