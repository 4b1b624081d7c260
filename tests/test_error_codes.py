"""Every refusal the domain can raise leaves with a GraphQL code (no server needed)."""

from __future__ import annotations

from graphql import GraphQLError

from resolvers.errors import coded, domain_code
from resolvers.ids import media_global_id
from social import errors


def kinds(base: type[errors.DomainError]) -> set[type[errors.DomainError]]:
    found = set()
    for sub in base.__subclasses__():
        found |= {sub} | kinds(sub)
    return found


def test_every_kind_of_refusal_has_a_code() -> None:
    abstract = {errors.MediaRefused}  # always raised as MediaMissing or MediaUnusable
    for kind in kinds(errors.DomainError) - abstract:
        assert domain_code(kind.__new__(kind)) is not None, kind


def test_refusals_are_coded_with_their_details_and_media_named_by_global_id() -> None:
    refused = errors.TooManyAttempts("slow down", retryAfter=3)
    error = coded(GraphQLError("x", original_error=refused))
    assert error.message == "slow down"
    assert error.extensions == {"retryAfter": 3, "code": "RATE_LIMITED"}
    missing = coded(GraphQLError("x", original_error=errors.MediaMissing(7, 42, "is gone")))
    assert missing.message == f"media {media_global_id(7, 42)} is gone"
    assert missing.extensions == {"field": "mediaIds", "code": "NOT_FOUND"}


def test_a_refusal_of_no_known_kind_is_masked_not_leaked() -> None:
    error = coded(GraphQLError("x", original_error=errors.DomainError("internal detail")))
    assert (error.message, error.extensions) == (
        "Unexpected error.",
        {"code": "INTERNAL_SERVER_ERROR"},
    )
