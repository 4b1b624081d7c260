"""Refuse text that is not Unicode before any resolver sees it.

JSON may spell a lone UTF-16 surrogate ("\\ud800"); Python then holds a string that cannot be
encoded as UTF-8, so the first Redis key, document or hash built from it fails deep inside a
resolver. GraphQL string literals cannot hold one (graphql-core refuses them as a syntax error),
so only variables can: they are checked once per operation, for every field alike.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from resolvers.errors import BadUserInput


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_lone_surrogate(value: object) -> bool:
    """Walks without recursion: variables may nest as deep as the JSON parser allowed."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not _is_unicode(item):
                return True
        elif isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list):
            pending += item
    return False


class RejectLoneSurrogates(SchemaExtension):
    """An operation whose variables hold a lone surrogate is refused with BAD_USER_INPUT before
    execution, over HTTP and WebSocket alike."""

    def on_execute(self) -> Iterator[None]:
        if _has_lone_surrogate(self.execution_context.variables):
            raise BadUserInput("text must be valid Unicode (a lone surrogate is not)")
        yield
