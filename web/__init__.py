"""Plain HTTP endpoints that are not GraphQL."""
