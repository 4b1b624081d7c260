"""Tweet text rules (pure): normalisation, length, and the @mentions and #hashtags in it."""

from __future__ import annotations

import re
import unicodedata

from schema.errors import BadUserInput

MAX_TWEET_LENGTH = 280  # Unicode code points after NFC normalisation and trimming
MENTION = re.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])")
# A hashtag needs at least one letter (#2024 is not one), as on Twitter.
HASHTAG = re.compile(r"(?<![\w#])#(\w*[^\W\d_]\w*)")
_ALLOWED_CONTROLS = {"\n", "\t"}


def normalize(text: str) -> str:
    """The text as stored, or BAD_USER_INPUT if it is empty, too long, or has control codes."""
    cleaned = unicodedata.normalize("NFC", text).replace("\r\n", "\n").strip()
    if not cleaned:
        raise BadUserInput("a tweet needs some text", field="text")
    if len(cleaned) > MAX_TWEET_LENGTH:
        raise BadUserInput(
            f"a tweet has at most {MAX_TWEET_LENGTH} characters, not {len(cleaned)}", field="text"
        )
    if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in cleaned):
        raise BadUserInput("control characters are not allowed in a tweet", field="text")
    return cleaned


def _unique(found: list[str]) -> tuple[str, ...]:
    """First spelling of each, compared case-insensitively, in order of appearance."""
    seen: dict[str, str] = {}
    for item in found:
        seen.setdefault(item.casefold(), item)
    return tuple(seen.values())


def mentions(text: str) -> tuple[str, ...]:
    return _unique(MENTION.findall(text))


def hashtags(text: str) -> tuple[str, ...]:
    return _unique(HASHTAG.findall(text))
