"""The GraphQL schema: types, roots and the limits checked before execution (no I/O here)."""
