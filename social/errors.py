"""What the domain refuses, and why. Resolvers map each class to a GraphQL error code in one
place (`resolvers.errors`); the keyword details (`field`, `retryAfter`, ...) reach the client as
error extensions."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal whose message is meant for the person who asked."""

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.details = details


class InvalidInput(DomainError):
    """The request itself is wrong (bad text, out-of-range size, a media item listed twice)."""


class NotPermitted(DomainError):
    """The caller may not do this to this thing (someone else's tweet or upload)."""


class NotFound(DomainError):
    """The thing named does not exist (or no longer does)."""


class BadCredentials(DomainError):
    """Log-in refused, or a token that no longer holds."""


class TooManyAttempts(DomainError):
    """A rate limit or quota: `retryAfter` (whole seconds) says when to try again."""


class TryAgain(DomainError):
    """A step took too long to finish safely; the same request may simply be retried."""


class MediaRefused(DomainError):
    """A media item cannot be attached. `owner_id` and `media_id` name it (None: the store
    could not say which of the tweet's items); `reason` completes "<the item> ...". The
    boundary names the item by the id the client sent; `field` names the argument that
    carried it (`mediaIds` of createTweet, `id` of the operations on one media item)."""

    def __init__(
        self, owner_id: int, media_id: int | None, reason: str, *, field: str = "mediaIds"
    ) -> None:
        super().__init__(f"media {media_id} {reason}", field=field)
        self.owner_id = owner_id
        self.media_id = media_id
        self.reason = reason


class MediaMissing(MediaRefused, NotFound):
    """No such upload (never made, or expired)."""


class MediaUnusable(MediaRefused, InvalidInput):
    """The upload is not a valid image, or is attached already."""


class MediaNotReady(MediaRefused):
    """A video that is not READY yet (its upload not completed, or still processing): the
    same request may succeed later."""
