"""Refuse, before validation, a document whose fragments expand to too many selections.

A fragment spreading another twice, which spreads another twice, and so on, doubles per
fragment: 20 fragments in 750 bytes expand to a million selections. graphql-core's own rules
do not expand fragments, but the rules that measure the operation do (Strawberry's depth and
alias limits, schema.limits' cost), and they take time in proportion to the expansion: seconds
of CPU for one small anonymous request, doubling with every fragment added. Here the expansion
is counted without expanding anything (each definition walked once, each fragment's size
computed once from the sizes of those it spreads), and a document over the bound is refused
before any rule walks it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from graphql import (
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
)
from strawberry.extensions import SchemaExtension

from schema.limits import QUERY_TOO_COMPLEX

# Fields and inline fragments of a document with every fragment spread replaced by its
# fragment: a feed page's query has about 30, GraphiQL's introspection query about 400.
MAX_EXPANDED_SELECTIONS = 5_000


def expanded_selections(document: DocumentNode) -> int:
    """How many selections the document's operations hold with their fragments expanded (a
    fragment that is unknown, or spreads itself, counts nothing: validation reports it)."""
    fragments: dict[str, tuple[int, Counter[str]]] = {}
    operations: list[tuple[int, Counter[str]]] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments[definition.name.value] = _own_selections(definition)
        elif isinstance(definition, ExecutableDefinitionNode):
            operations.append(_own_selections(definition))
    sizes = _fragment_sizes(fragments)
    return sum(
        own + sum(count * sizes.get(name, 0) for name, count in spread.items())
        for own, spread in operations
    )


def _own_selections(definition: ExecutableDefinitionNode) -> tuple[int, Counter[str]]:
    """The definition's fields and inline fragments at any depth, and the fragments it spreads
    (with how many times), without following the spreads. Walked with a stack: the nesting of
    a document is bounded only by its size."""
    count, spread = 0, Counter[str]()
    pending = [definition.selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                spread[selection.name.value] += 1
                continue
            count += 1
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                pending.append(selection.selection_set)
    return count, spread


def _fragment_sizes(fragments: dict[str, tuple[int, Counter[str]]]) -> dict[str, int]:
    """Each fragment's selections with its spreads expanded, each computed once from those it
    spreads (depth first, with a stack; a spread back onto the walk's path counts nothing)."""
    sizes: dict[str, int] = {}
    for root in fragments:
        stack: list[tuple[str, bool]] = [(root, False)]
        on_path: set[str] = set()
        while stack:
            name, finished = stack.pop()
            if finished:
                on_path.discard(name)
                own, spread = fragments[name]
                sizes[name] = own + sum(count * sizes.get(s, 0) for s, count in spread.items())
            elif name in fragments and name not in sizes and name not in on_path:
                on_path.add(name)
                stack.append((name, True))
                stack.extend((inner, False) for inner in fragments[name][1])
    return sizes


class FragmentExpansionLimit(SchemaExtension):
    """Refuses (QUERY_TOO_COMPLEX) a document over MAX_EXPANDED_SELECTIONS before validation
    runs. Listed after the document cache: a hit (accepted before, so within the bound) has
    cleared the errors and is not counted again."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors is None and document is not None:
            selections = expanded_selections(document)
            if selections > MAX_EXPANDED_SELECTIONS:
                context.pre_execution_errors = [
                    GraphQLError(
                        f"the operation's fragments expand to {selections} selections; at "
                        f"most {MAX_EXPANDED_SELECTIONS} are accepted",
                        extensions={
                            "code": QUERY_TOO_COMPLEX,
                            "maxSelections": MAX_EXPANDED_SELECTIONS,
                        },
                    )
                ]
        yield
