"""A cheaper way through graphql-core for the commonest field: a scalar read off an attribute.

graphql-core resolves every field the same way: it builds a ResolveInfo (a dozen attributes),
looks for arguments, calls the resolver, then completes the value through the generic path. A
feed page has hundreds of fields and most are leaves that Strawberry resolves by reading an
attribute (its "basic" resolver, which never looks at the info), so that work is most of the
executor's time per page (issue 11's profile). For exactly those fields, when the value is
there and valid, the executor below reads the attribute and coerces it directly; anything else
(an argument, a missing or null value, a value still to be awaited, one that does not coerce,
field middleware) takes graphql-core's own path, so errors, nulls and paths are reported as
before.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLNonNull, GraphQLObjectType, is_leaf_type
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class LeafFieldExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Strawberry always passes a middleware manager; it wraps nothing unless an extension
        # implements `resolve` (then it returns a wrapper instead of the resolver it is given).
        manager = self.middleware_manager
        self._no_middleware = manager is None or manager.get_field_resolver(_identity) is _identity

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        field_def = self.schema.get_field(parent_type, node.name.value)
        resolve = None if field_def is None else field_def.resolve
        if (
            field_def is not None
            and resolve is not None
            and getattr(resolve, "_is_default", False)  # Strawberry's basic resolver
            and not node.arguments
            and self._no_middleware
        ):
            leaf = field_def.type
            if isinstance(leaf, GraphQLNonNull):
                leaf = leaf.of_type
            if is_leaf_type(leaf):
                value = resolve(source, None)  # it reads the attribute, never the info
                if value is not None and not self.is_awaitable(value):
                    coerced = leaf.coerce_output_value(value)
                    if coerced is not None and coerced is not Undefined:
                        return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )


def _identity(source: Any, info: Any) -> Any:
    return source
