"""Parse and validate each accepted operation once, and keep nothing a client got refused."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from graphql import ASTValidationRule, DocumentNode
from strawberry.extensions import SchemaExtension

CacheKey = tuple[str, tuple[type[ASTValidationRule], ...]]


class DocumentCache:
    """Documents that parsed and passed validation, by (query text, validation rules), least
    recently used evicted first. A refused text is never kept: sending it again costs its sender
    another parse, not the process memory (strawberry's parser cache keeps every text it parses).

    Bounded by entries and by the characters of query text held (`max_text_chars`): a parsed
    document costs about 30 times its text in memory (graphql-core's AST and tokens), so without
    a text bound 1,024 accepted texts near MAX_QUERY_BYTES held half a gigabyte. A text longer than
    `max_text_chars // 64` is not kept at all: such texts are not the repeated queries of real
    clients, and would push many of those out."""

    def __init__(self, maxsize: int, max_text_chars: int) -> None:
        self.maxsize = maxsize
        self.max_text_chars = max_text_chars
        self.text_chars = 0
        self._documents: OrderedDict[CacheKey, DocumentNode] = OrderedDict()

    def get(self, key: CacheKey) -> DocumentNode | None:
        document = self._documents.get(key)
        if document is not None:
            self._documents.move_to_end(key)
        return document

    def put(self, key: CacheKey, document: DocumentNode) -> None:
        size = len(key[0])
        if size > self.max_text_chars // 64 or key in self._documents:
            return
        self._documents[key] = document
        self.text_chars += size
        while len(self._documents) > self.maxsize or self.text_chars > self.max_text_chars:
            (query, _), _ = self._documents.popitem(last=False)
            self.text_chars -= len(query)

    def queries(self) -> list[str]:
        """The query texts held (what a memory check looks at)."""
        return [query for query, _ in self._documents]


class CachedDocuments(SchemaExtension):
    """On a hit, the cached document is used and validation is skipped (it passed under the same
    rules); on a miss, strawberry parses and validates, and only an accepted document is stored.
    The key holds the rules the other extensions added in `on_operation`, which runs first."""

    def __init__(self, cache: DocumentCache) -> None:
        self.cache = cache
        self._key: CacheKey | None = None
        self._hit = False

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            self._key = (context.query, context.validation_rules)
            document = self.cache.get(self._key)
            if document is not None:
                context.graphql_document = document
                self._hit = True
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self._hit:
            context.pre_execution_errors = []  # strawberry validates only while this is None
        yield
        document = context.graphql_document
        accepted = not context.pre_execution_errors
        if document is not None and accepted and not self._hit and self._key is not None:
            self.cache.put(self._key, document)
