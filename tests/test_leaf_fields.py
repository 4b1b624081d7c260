"""schema.leaf_fields: the direct path gives graphql-core's answers, errors included."""

from __future__ import annotations

import asyncio
from typing import Any

import strawberry

from schema.leaf_fields import LeafFieldExecutor


async def _later(value: int) -> int:
    await asyncio.sleep(0)
    return value


@strawberry.type
class Item:
    count: int
    label: str | None
    flag: bool
    broken: int
    pending: int

    @strawberry.field
    def doubled(self, by: int = 2) -> int:
        return self.count * by


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [
            Item(count=1, label="one", flag=True, broken=1, pending=_later(5)),  # type: ignore[arg-type]
            Item(count=2, label=None, flag=False, broken=None, pending=_later(6)),  # type: ignore[arg-type]
        ]


def run(query: str, executor: Any) -> Any:
    schema = strawberry.Schema(query=Query, execution_context_class=executor)
    return asyncio.run(schema.execute(query))


def test_direct_leaves_answer_as_graphql_core_does() -> None:
    query = "{ items { count label flag pending doubled(by: 3) broken } }"
    fast, plain = run(query, LeafFieldExecutor), run(query, None)
    assert fast.data == plain.data is None  # a null in a non-null field nulls the list item's
    assert (
        [e.path for e in fast.errors] == [e.path for e in plain.errors] == [["items", 1, "broken"]]
    )
    query = "{ items { count label flag pending doubled(by: 3) } }"
    assert (
        run(query, LeafFieldExecutor).data
        == run(query, None).data
        == {
            "items": [
                {"count": 1, "label": "one", "flag": True, "pending": 5, "doubled": 3},
                {"count": 2, "label": None, "flag": False, "pending": 6, "doubled": 6},
            ]
        }
    )


class Counting(LeafFieldExecutor):
    """Counts the fields that took graphql-core's path (each builds a ResolveInfo)."""

    infos = 0

    def build_resolve_info(self, *args: Any) -> Any:
        Counting.infos += 1
        return super().build_resolve_info(*args)


def test_only_plain_present_values_take_the_direct_path() -> None:
    Counting.infos = 0
    run("{ items { count label flag pending doubled(by: 3) } }", Counting)
    # `items`, then per item `pending` (still to be awaited) and `doubled` (an argument, a
    # resolver); the null `label` of the second item too.
    assert Counting.infos == 1 + 2 * 2 + 1
