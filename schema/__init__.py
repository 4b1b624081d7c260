"""The GraphQL schema: types, roots, ids, errors and limits (no I/O here)."""
