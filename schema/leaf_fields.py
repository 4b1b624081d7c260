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

Which fields qualify is decided once per field of the operation (a list repeats the same
selection for every item), so a page's repeated leaves cost an attribute read and, for the
built-in scalars, a type check: a page of 20 tweets with their counts has over 200 of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
    is_leaf_type,
)
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

# Built-in scalars whose coercion returns a value of exactly this type unchanged (Int also
# checks the 32-bit range, below); other leaves (DateTime, enums) are coerced by their type.
UNCHANGED_TYPES: dict[GraphQLLeafType, type] = {
    GraphQLString: str,
    GraphQLID: str,
    GraphQLBoolean: bool,
    GraphQLInt: int,
}
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class DirectLeaf:
    """How to answer one plain leaf field without graphql-core's path."""

    __slots__ = ("attribute", "leaf", "unchanged")

    def __init__(self, attribute: str, leaf: GraphQLLeafType) -> None:
        self.attribute = attribute
        self.leaf = leaf
        self.unchanged = UNCHANGED_TYPES.get(leaf)

    def value(self, source: Any, is_awaitable: Callable[[Any], bool]) -> Any:
        """The coerced value, or Undefined: take graphql-core's path (it reports why)."""
        value: Any = getattr(source, self.attribute, None)
        kind = type(value)
        if kind is self.unchanged and (kind is not int or INT_MIN <= value <= INT_MAX):
            return value
        if self.unchanged is not None or value is None or is_awaitable(value):
            return Undefined  # null, or a value to await, convert or refuse the slow way
        try:
            coerced = self.leaf.coerce_output_value(value)
        except Exception:  # graphql-core's path reports it, at the field's path
            return Undefined
        return Undefined if coerced is None else coerced


class LeafFieldExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Strawberry always passes a middleware manager; it wraps nothing unless an extension
        # implements `resolve` (then it returns a wrapper instead of the resolver it is given).
        manager = self.middleware_manager
        self._no_middleware = manager is None or manager.get_field_resolver(_identity) is _identity
        # per (parent type, field details list) of this operation: the list itself (kept
        # alive, so that no other list can take its id, as graphql-core's own memo does) and
        # the field's direct answer, or None (graphql-core's path).
        self._direct: dict[tuple[int, int], tuple[Any, DirectLeaf | None]] = {}

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        key = (id(parent_type), id(field_details_list))
        try:
            direct = self._direct[key][1]
        except KeyError:
            direct = self._direct_leaf(parent_type, field_details_list)
            self._direct[key] = (field_details_list, direct)
        if direct is not None:
            value = direct.value(source, self.is_awaitable)
            if value is not Undefined:
                return value
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _direct_leaf(
        self, parent_type: GraphQLObjectType, field_details_list: Any
    ) -> DirectLeaf | None:
        """A plain leaf: Strawberry's basic resolver (an attribute read, never the info), no
        arguments, no middleware, a scalar or enum type."""
        node = field_details_list[0].node
        field_def: GraphQLField | None = self.schema.get_field(parent_type, node.name.value)
        if (
            field_def is None
            or not getattr(field_def.resolve, "_is_default", False)
            or node.arguments
            or not self._no_middleware
        ):
            return None
        leaf = field_def.type
        if isinstance(leaf, GraphQLNonNull):
            leaf = leaf.of_type
        definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if not is_leaf_type(leaf) or definition is None:
            return None
        return DirectLeaf(definition.python_name, leaf)


def _identity(source: Any, info: Any) -> Any:
    return source
