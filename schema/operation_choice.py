"""Which operation of a document runs: the GraphQL spec's GetOperation, which Strawberry skips."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension


class OperationNameRequired(SchemaExtension):
    """A document of several operations sent without `operationName` is a request error (the
    spec's GetOperation); Strawberry would run the first one. Listed after the document cache,
    whose hit clears the errors strawberry's validation would set."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        # Strawberry's own property falls back to the first operation's name: read what was sent.
        sent_name = getattr(context, "_provided_operation_name", None)
        document = context.graphql_document
        if sent_name is None and document is not None:
            operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
            if operations > 1:
                context.pre_execution_errors = [
                    GraphQLError(
                        "Send operationName: the document holds several operations",
                        extensions={"code": "BAD_REQUEST"},
                    )
                ]
        yield
