"""What one operation may ask, checked without I/O: its size before parsing, its static cost
during validation, and the graph calls it may have in flight while it runs.

Every rule class here is built once per schema, so the document cache (schema.document_cache)
keys on the same rules request after request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
)

QUERY_TOO_LARGE = "QUERY_TOO_LARGE"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
# Nesting deeper than this is refused as too complex before the cost recursion could run out of
# stack; the depth limit (MAX_QUERY_DEPTH, far lower) names the real problem in the same answer.
COST_NESTING_GUARD = 64


def query_too_large(query: str | None, max_bytes: int) -> GraphQLError | None:
    """The error for operation text over `max_bytes` (UTF-8), checked before parsing so that an
    oversized text costs neither a parse nor a cache entry; None when it fits."""
    if query is None or len(query) * 4 <= max_bytes:  # no UTF-8 character is wider than 4 bytes
        return None
    size = len(query.encode("utf-8", "surrogatepass"))
    if size <= max_bytes:
        return None
    return GraphQLError(
        f"the query is {size} bytes; at most {max_bytes} are accepted",
        extensions={"code": QUERY_TOO_LARGE, "maxBytes": max_bytes},
    )


def query_cost_rule(max_cost: int, max_page_size: int) -> type[ASTValidationRule]:
    """A rule refusing operations whose static cost exceeds `max_cost`.

    Every field with a selection (an object: about one load) costs 1; a field taking `first`
    multiplies the cost of its selection by it: the literal value, the argument's default when
    absent, MAX_PAGE_SIZE when it is a variable (the worst a client may then ask), never more
    than MAX_PAGE_SIZE (resolvers refuse more). Leaf fields are free.
    """

    class QueryCost(ValidationRule):  # an executable-document rule: its context has the schema
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            context = self.context
            root = context.schema.get_root_type(node.operation)
            try:
                cost = _selection_cost(context, node.selection_set, root, max_page_size, 0, set())
            except _TooDeep:
                message = f"the operation nests deeper than {COST_NESTING_GUARD} levels"
            else:
                if cost <= max_cost:
                    return
                message = (
                    f"the operation costs {cost}; at most {max_cost} is accepted"
                    " (list fields cost their `first` times their selection)"
                )
            context.report_error(
                GraphQLError(
                    message,
                    nodes=[node],
                    extensions={"code": QUERY_TOO_COMPLEX, "maxCost": max_cost},
                )
            )

    return QueryCost


def _selection_cost(
    context: ValidationContext,
    selection_set: SelectionSetNode,
    parent: GraphQLNamedType | None,
    max_page_size: int,
    depth: int,
    spreading: set[str],
) -> int:
    """Cost of one selection set under `parent` (unknown fields and types cost nothing: other
    rules report them)."""
    if depth > COST_NESTING_GUARD:
        raise _TooDeep
    fields = getattr(parent, "fields", None) or {}
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            definition = fields.get(selection.name.value)
            if selection.selection_set is None or definition is None:
                continue
            inner = _selection_cost(
                context,
                selection.selection_set,
                get_named_type(definition.type),
                max_page_size,
                depth + 1,
                spreading,
            )
            total += 1 + _page_size(selection, definition, max_page_size) * inner
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            scope = context.schema.get_type(condition.name.value) if condition else parent
            total += _selection_cost(
                context, selection.selection_set, scope, max_page_size, depth + 1, spreading
            )
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            if fragment is None or name in spreading:  # unknown or cyclic: other rules report
                continue
            scope = context.schema.get_type(fragment.type_condition.name.value)
            total += _selection_cost(
                context, fragment.selection_set, scope, max_page_size, depth + 1, spreading | {name}
            )
    return total


class _TooDeep(Exception):
    """Nesting past COST_NESTING_GUARD."""


def _page_size(node: FieldNode, definition: Any, max_page_size: int) -> int:
    """How many items a field with a `first` argument may return (1 for other fields)."""
    argument = definition.args.get("first")
    if argument is None:
        return 1
    given = next((a.value for a in node.arguments or () if a.name.value == "first"), None)
    if given is None:
        value = argument.default_value if isinstance(argument.default_value, int) else 1
    elif isinstance(given, IntValueNode):
        value = int(given.value)
    else:  # a variable: whatever the client sends, up to the page-size limit
        value = max_page_size
    return max(0, min(value, max_page_size))


# The graph-call slots of the operation running in this task (and the tasks it spawns).
_graph_slots: ContextVar[asyncio.Semaphore | None] = ContextVar("graph_slots", default=None)


@contextlib.contextmanager
def graph_call_slots(limit: int) -> Iterator[None]:
    """While open, graph calls made by this task and the tasks it starts share `limit` slots:
    one operation cannot take the whole graph connection pool from everyone else."""
    token = _graph_slots.set(asyncio.Semaphore(limit))
    try:
        yield
    finally:
        # A subscription's generator may be closed from another task, in whose context the
        # token was not made (ValueError): the context it was set in ends with its task, and
        # the other task's own value must stay.
        with contextlib.suppress(ValueError):
            _graph_slots.reset(token)


class SlotCappedGraph:
    """The graph, each coroutine method waiting for a slot of the calling operation (see
    `graph_call_slots`); calls made outside an operation (start-up, jobs) are not capped."""

    def __init__(self, graph: Any) -> None:
        self._graph = graph

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._graph, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        async def capped(*args: Any, **kwargs: Any) -> Any:
            slots = _graph_slots.get()
            if slots is None:
                return await attribute(*args, **kwargs)
            async with slots:
                return await attribute(*args, **kwargs)

        return capped
