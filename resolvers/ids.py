"""Opaque global ids and cursors: what clients see instead of raw numbers (pure, no I/O)."""

from __future__ import annotations

import base64
import binascii
import re

from graph.port import EdgeCursor
from social.errors import InvalidInput
from storage.feeds import FeedRef
from storage.likes import LikeCursor

_MAX_ID = 2**63 - 1
# A number as this module writes one: ASCII digits, no sign, space, underscore or leading zero
# (int() would also take " 1", "+1", "1_0", "01" and digits of other scripts, U+0661 among them).
_CANONICAL = re.compile(r"0|[1-9][0-9]*")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(token: str) -> str:
    padded = token + "=" * (-len(token) % 4)
    return base64.urlsafe_b64decode(padded.encode()).decode()


def _parts(token: str, prefix: str, count: int, what: str) -> list[int]:
    """Decode `prefix:n1:n2...` into `count` non-negative 63-bit ints or raise InvalidInput.
    Only what this module writes is accepted: unpadded URL-safe base64 (no stray characters,
    which the decoder would skip) of canonical decimal numbers (`_CANONICAL`)."""
    malformed = InvalidInput(f"malformed {what}: {token[:40]!r}")
    try:
        text = _unb64(token)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise malformed from None
    kind, *numbers = text.split(":")
    if _b64(text) != token or kind != prefix or len(numbers) != count:
        raise malformed
    if not all(_CANONICAL.fullmatch(n) for n in numbers):
        raise malformed
    values = [int(n) for n in numbers]
    if not all(v <= _MAX_ID for v in values):
        raise malformed
    return values


def user_global_id(user_id: int) -> str:
    return _b64(f"User:{user_id}")


def parse_user_global_id(token: str) -> int:
    return _parts(token, "User", 1, "user id")[0]


def edge_cursor(cursor: EdgeCursor) -> str:
    return _b64(f"follow:{cursor.followed_at_ms}:{cursor.user_id}")


def parse_edge_cursor(token: str | None) -> EdgeCursor | None:
    if token is None:
        return None
    at_ms, user_id = _parts(token, "follow", 2, "cursor")
    return EdgeCursor(followed_at_ms=at_ms, user_id=user_id)


def tweet_global_id(author_id: int, tweet_id: int) -> str:
    """Carries the author, so fetching a tweet goes straight to its shard."""
    return _b64(f"Tweet:{author_id}:{tweet_id}")


def parse_tweet_global_id(token: str) -> tuple[int, int]:
    author_id, tweet_id = _parts(token, "Tweet", 2, "tweet id")
    return author_id, tweet_id


def media_global_id(owner_id: int, media_id: int) -> str:
    return _b64(f"Media:{owner_id}:{media_id}")


def parse_media_global_id(token: str) -> tuple[int, int]:
    owner_id, media_id = _parts(token, "Media", 2, "media id")
    return owner_id, media_id


def timeline_cursor(tweet_id: int) -> str:
    return _b64(f"timeline:{tweet_id}")


def parse_timeline_cursor(token: str | None) -> int | None:
    return None if token is None else _parts(token, "timeline", 1, "cursor")[0]


def feed_cursor(ref: FeedRef) -> str:
    return _b64(f"feed:{ref.tweet_id}:{ref.author_id}")


def parse_feed_cursor(token: str | None) -> FeedRef | None:
    if token is None:
        return None
    tweet_id, author_id = _parts(token, "feed", 2, "cursor")
    return FeedRef(tweet_id=tweet_id, author_id=author_id)


def reply_cursor(ref: tuple[int, int]) -> str:
    """A place in a replies list: the (author id, tweet id) of the last reply seen."""
    return _b64(f"reply:{ref[0]}:{ref[1]}")


def parse_reply_cursor(token: str | None) -> tuple[int, int] | None:
    if token is None:
        return None
    author_id, tweet_id = _parts(token, "reply", 2, "cursor")
    return author_id, tweet_id


def like_cursor(cursor: LikeCursor) -> str:
    return _b64(f"like:{cursor.liked_at_ms}:{cursor.ref.tweet_id}:{cursor.ref.author_id}")


def parse_like_cursor(token: str | None) -> LikeCursor | None:
    if token is None:
        return None
    at_ms, tweet_id, author_id = _parts(token, "like", 3, "cursor")
    return LikeCursor(at_ms, FeedRef(tweet_id=tweet_id, author_id=author_id))
