"""Errors clients see. Each carries `extensions.code`; anything unexpected is masked and logged."""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
from graphql import GraphQLError

from graph.port import GraphUnavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error whose message is meant for the client."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.extensions = extensions


class BadUserInput(ApiError):
    code = "BAD_USER_INPUT"


class Unauthenticated(ApiError):
    code = "UNAUTHENTICATED"


class Forbidden(ApiError):
    code = "FORBIDDEN"


class NotFound(ApiError):
    code = "NOT_FOUND"


class RateLimited(ApiError):
    code = "RATE_LIMITED"


class ServiceUnavailable(ApiError):
    code = "SERVICE_UNAVAILABLE"


_BACKEND_DOWN = (GraphUnavailable, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def coded(error: GraphQLError) -> GraphQLError:
    """The error as the client should see it, with `extensions.code` always set."""
    original = error.original_error
    if original is None and (error.extensions or {}).get("code"):
        return error  # translated already
    if original is None:  # syntax or validation: the message is about the query itself
        code, message, extensions = "GRAPHQL_VALIDATION_FAILED", error.message, {}
    elif isinstance(original, GraphQLError):  # variables that do not fit their declared types
        code, message, extensions = "BAD_USER_INPUT", error.message, {}
    elif isinstance(original, ApiError):
        code, message, extensions = original.code, str(original), original.extensions
    elif isinstance(original, _BACKEND_DOWN):
        log.warning("backend unavailable: %r", original)
        code, message, extensions = "SERVICE_UNAVAILABLE", "A backing service is unavailable.", {}
    else:
        log.error("unexpected error", exc_info=original)
        code, message, extensions = "INTERNAL_SERVER_ERROR", "Unexpected error.", {}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**extensions, "code": code},
    )


def coded_result(result: Any) -> Any:
    """`result` (an ExecutionResult) with every error translated by `coded`."""
    if getattr(result, "errors", None):
        result.errors = [coded(error) for error in result.errors]
    return result
