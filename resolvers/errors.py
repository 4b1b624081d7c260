"""Errors clients see, and the one place where everything raised below becomes one: domain
errors get their GraphQL code here, backends that do not answer become SERVICE_UNAVAILABLE, and
anything unexpected is masked and logged. Each error carries `extensions.code`."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError
from strawberry.schema.exceptions import CannotGetOperationTypeError

from graph.port import GraphUnavailable
from resolvers.ids import media_global_id
from social import errors as domain
from storage.redis_clients import REDIS_UNAVAILABLE

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


_BACKEND_DOWN = (GraphUnavailable, *REDIS_UNAVAILABLE)
# What each kind of refusal is called in GraphQL; a media refusal is also one of these kinds.
_DOMAIN_CODES: list[tuple[type[domain.DomainError], str]] = [
    (domain.MediaNotReady, "MEDIA_NOT_READY"),
    (domain.InvalidInput, BadUserInput.code),
    (domain.NotPermitted, Forbidden.code),
    (domain.NotFound, NotFound.code),
    (domain.BadCredentials, Unauthenticated.code),
    (domain.TooManyAttempts, RateLimited.code),
    (domain.TryAgain, ServiceUnavailable.code),
]


def _domain_message(error: domain.DomainError) -> str:
    """Media are named by the global id the client sent, not by the internal number."""
    if not isinstance(error, domain.MediaRefused):
        return str(error)
    if error.media_id is None:
        return f"a media item {error.reason}"
    return f"media {media_global_id(error.owner_id, error.media_id)} {error.reason}"


def domain_code(error: domain.DomainError) -> str | None:
    """The GraphQL code of a domain refusal; None for a kind with no code (a bug: it is then
    masked as unexpected)."""
    return next((code for kind, code in _DOMAIN_CODES if isinstance(error, kind)), None)


def coded(error: GraphQLError) -> GraphQLError:
    """The error as the client should see it, with `extensions.code` always set."""
    original = error.original_error
    extensions: dict[str, object]
    if original is None and (error.extensions or {}).get("code"):
        return error  # translated already
    if original is None:  # syntax or validation: the message is about the query itself
        code, message, extensions = "GRAPHQL_VALIDATION_FAILED", error.message, {}
    elif isinstance(original, GraphQLError):  # variables that do not fit their declared types
        code, message, extensions = "BAD_USER_INPUT", error.message, {}
    elif isinstance(original, CannotGetOperationTypeError):  # no such operation in the document
        code, message, extensions = "BAD_REQUEST", original.as_http_error_reason(), {}
    elif isinstance(original, ApiError):
        code, message, extensions = original.code, str(original), original.extensions
    elif isinstance(original, domain.DomainError) and (known := domain_code(original)):
        code, message, extensions = known, _domain_message(original), original.details
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
