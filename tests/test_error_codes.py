"""Every refusal the domain can raise leaves with a GraphQL code (no server needed)."""

from __future__ import annotations

import pytest
from graphql import GraphQLError

from resolvers.errors import coded, domain_code
from resolvers.ids import media_global_id
from social import errors
from social.uploads import Uploads
from storage.media import MediaInvalid, MediaNotFound


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


class _NoMedia:
    """A media library in which every item is missing (or no longer takes parts)."""

    async def complete_upload(self, owner_id: int, media_id: int) -> bool:
        raise MediaNotFound(media_id, "does not exist")

    async def part_url(self, owner_id: int, media_id: int, part_number: int) -> str:
        raise MediaInvalid(media_id, "no longer accepts parts")

    async def status(self, owner_id: int, media_id: int) -> None:
        return None


class _NoLimit:
    async def charge(self, action: str, subject: object, rate: str) -> None:
        return None


async def test_refusals_of_one_media_item_name_its_id_argument() -> None:
    """completeMediaUpload, mediaUploadPartUrl and media take the item as `id`: their
    refusals say `field: "id"` (createTweet's say `mediaIds`)."""
    uploads = Uploads(
        media=_NoMedia(),  # type: ignore[arg-type]
        ids=None,  # type: ignore[arg-type]
        jobs=None,  # type: ignore[arg-type]
        throttle=_NoLimit(),  # type: ignore[arg-type]
        max_bytes=1,
        max_pending_bytes=1,
        rate="1/1",
        complete_rate="1/1",
    )
    for call in (
        uploads.complete(7, (7, 42)),
        uploads.part_url(7, (7, 42), 1),
        uploads.status(7, (7, 42)),
    ):
        with pytest.raises(errors.MediaRefused) as refused:
            await call
        error = coded(GraphQLError("x", original_error=refused.value))
        assert error.extensions is not None and error.extensions["field"] == "id", error
