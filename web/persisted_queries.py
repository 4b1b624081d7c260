"""Automatic persisted queries, Apollo's protocol (`extensions.persistedQuery`), for HTTP.

A client sends `{"version": 1, "sha256Hash": "<hex>"}` instead of the operation text. A hash this
process knows is replaced by its text; an unknown one gets `PERSISTED_QUERY_NOT_FOUND`, and the
client (Apollo Client's persisted-query link) sends the hash again with the text, which is
checked against the hash, run, and then kept. Answers follow Apollo Server: not found (and not
supported) is an HTTP 200, so the client retries instead of giving up; a bad version or a hash
that does not match its text is a 400.

The texts are kept in a bounded LRU per process (entries and bytes), and only once the text has
parsed and validated: an unknown hash stores nothing, a text over MAX_QUERY_BYTES is never hashed
nor kept (the schema refuses it as for any request), so no sender can grow the memory past the
bound, only push other entries out (their clients then register them again).
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

from schema.limits import query_too_large

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
SUPPORTED_VERSION = 1
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class PersistedQueryError(Exception):
    """The request cannot run as sent: a coded GraphQL error with the HTTP status Apollo uses."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Registration:
    """A text whose hash checked out, to be kept once it has parsed and validated."""

    sha256: str
    query: str


def sha256_hex(query: str) -> str:
    """The hash Apollo Client computes: SHA-256 of the UTF-8 text, lower-case hex."""
    return hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest()


class QueryStore:
    """Operation texts by hash, least recently used out first, bounded by entry count and by
    bytes held (UTF-8 text plus hash). An entry larger than the byte bound is not kept."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes_held = 0
        self._texts: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, sha256: str) -> str | None:
        query = self._texts.get(sha256)
        if query is not None:
            self._texts.move_to_end(sha256)
        return query

    def put(self, sha256: str, query: str) -> None:
        size = _entry_bytes(sha256, query)
        if self.max_entries < 1 or size > self.max_bytes:
            return
        if sha256 in self._texts:
            self._texts.move_to_end(sha256)
            return
        self._texts[sha256] = query
        self.bytes_held += size
        while len(self._texts) > self.max_entries or self.bytes_held > self.max_bytes:
            old_hash, old_query = self._texts.popitem(last=False)
            self.bytes_held -= _entry_bytes(old_hash, old_query)


def _entry_bytes(sha256: str, query: str) -> int:
    return len(sha256) + len(query.encode("utf-8", "surrogatepass"))


class PersistedQueries:
    """The protocol over a store (None: persisted queries are off, and say so as Apollo does)."""

    def __init__(self, store: QueryStore | None, *, max_query_bytes: int) -> None:
        self.store = store
        self.max_query_bytes = max_query_bytes

    @classmethod
    def bounded(cls, entries: int, total_bytes: int, *, max_query_bytes: int) -> PersistedQueries:
        """With a store of `entries` texts and `total_bytes` at most; off when `entries` is 0."""
        store = QueryStore(entries, total_bytes) if entries > 0 else None
        return cls(store, max_query_bytes=max_query_bytes)

    def resolve(
        self, query: str | None, extensions: Mapping[str, object] | None
    ) -> tuple[str | None, Registration | None]:
        """(the text to run, what to keep once it has validated) for this request.

        Raises PersistedQueryError when the request names a hash that cannot be used."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query, None
        if self.store is None:
            raise PersistedQueryError(
                HTTPStatus.OK, PERSISTED_QUERY_NOT_SUPPORTED, "PersistedQueryNotSupported"
            )
        sha256 = _parse(persisted)
        if query is None:
            stored = self.store.get(sha256)
            if stored is None:
                raise PersistedQueryError(
                    HTTPStatus.OK, PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound"
                )
            return stored, None
        if query_too_large(query, self.max_query_bytes) is not None:
            return query, None  # refused unparsed by the schema, as any oversized text
        if sha256_hex(query) != sha256:
            raise PersistedQueryError(
                HTTPStatus.BAD_REQUEST, "BAD_USER_INPUT", "provided sha does not match query"
            )
        return query, Registration(sha256, query)

    def register(self, registration: Registration) -> None:
        """Keep a text that parsed and validated."""
        if self.store is not None:
            self.store.put(registration.sha256, registration.query)


def _parse(persisted: object) -> str:
    """The lower-case hash of a well-formed `persistedQuery` of a supported version."""
    if not isinstance(persisted, Mapping):
        raise PersistedQueryError(
            HTTPStatus.BAD_REQUEST, "BAD_REQUEST", "extensions.persistedQuery must be an object"
        )
    version = persisted.get("version")
    if version != SUPPORTED_VERSION or isinstance(version, bool):
        raise PersistedQueryError(
            HTTPStatus.BAD_REQUEST, "BAD_REQUEST", "Unsupported persisted query version"
        )
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise PersistedQueryError(
            HTTPStatus.BAD_REQUEST,
            "BAD_REQUEST",
            "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits",
        )
    return sha256.lower()
