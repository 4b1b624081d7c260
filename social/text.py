"""Text rules (pure): a tweet's normalisation, length, @mentions and #hashtags; usernames,
passwords and display names.

Length is counted as Twitter counts it (twitter-text's weighted length: most CJK characters and
emoji weigh 2, a URL weighs 23 whatever its length), by the maintained Python port of the
twitter-text rules (`twitter-text-parser`) rather than by rules of our own.
"""

from __future__ import annotations

import re
import unicodedata

from twitter_text import parse_tweet

from auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from social.errors import InvalidInput

MAX_TWEET_LENGTH = 280  # weighted, as twitter-text counts (its default configuration)
# Bounds the work of the weighted count (about 7 µs a code point) before it runs; a tweet of
# 280 weighted characters reaches it only with links of well over 1,000 characters.
MAX_TWEET_CODE_POINTS = 2000
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_]{1,15}")
MAX_DISPLAY_NAME_LENGTH = 50
MENTION = re.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])")
# A hashtag needs at least one letter (#2024 is not one), as on Twitter.
HASHTAG = re.compile(r"(?<![\w#])#(\w*[^\W\d_]\w*)")
_ALLOWED_CONTROLS = {"\n", "\t"}
# Bidirectional embedding, override and isolate controls (U+202A-202E, U+2066-2069): they
# reorder how the text, and whatever is shown after it, reads ("Trojan Source" spoofing).
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Letters and symbols that draw nothing (blank "filler" characters used to fake empty text).
_BLANK_GRAPHICS = {"\u115f", "\u1160", "\u2800", "\u3164", "\uffa0"}
# Categories that draw nothing on their own: separators, format and control characters, and
# combining marks (which need a base character).
_INVISIBLE_CATEGORIES = {"Zs", "Zl", "Zp", "Cf", "Cc", "Mn", "Me"}


def _visible(char: str) -> bool:
    return unicodedata.category(char) not in _INVISIBLE_CATEGORIES and char not in _BLANK_GRAPHICS


def normalize(text: str) -> str:
    """The text as stored (NFC, CRLF as LF, trimmed), or BAD_USER_INPUT if it has nothing
    visible, is longer than Twitter allows, or has control or bidirectional-override codes."""
    if len(text) > MAX_TWEET_CODE_POINTS:
        raise InvalidInput(
            f"a tweet has at most {MAX_TWEET_LENGTH} characters, not {len(text)}", field="text"
        )
    cleaned = unicodedata.normalize("NFC", text).replace("\r\n", "\n").strip()
    if not any(_visible(c) for c in cleaned):
        raise InvalidInput("a tweet needs some visible text", field="text")
    if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in cleaned):
        raise InvalidInput("control characters are not allowed in a tweet", field="text")
    if _BIDI_CONTROLS.search(cleaned):
        raise InvalidInput(
            "bidirectional override and isolate characters are not allowed in a tweet",
            field="text",
        )
    parsed = parse_tweet(cleaned)
    if parsed.weightedLength > MAX_TWEET_LENGTH:
        raise InvalidInput(
            f"a tweet has at most {MAX_TWEET_LENGTH} characters as Twitter counts them (CJK "
            f"characters and emoji count 2, links 23), not {parsed.weightedLength}",
            field="text",
        )
    if not parsed.valid:  # within the length: twitter-text refuses a character in it
        raise InvalidInput("the text has a character Twitter does not allow", field="text")
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


def is_username(text: str) -> bool:
    return USERNAME_PATTERN.fullmatch(text) is not None


def validate_username(username: str) -> str:
    if not is_username(username):
        raise InvalidInput("username must be 1-15 letters, digits or underscores", field="username")
    return username


def validate_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters",
            field="password",
        )
    return password


def validate_display_name(display_name: str) -> str:
    """The display name as stored (NFC, trimmed)."""
    cleaned = unicodedata.normalize("NFC", display_name).strip()
    if not 1 <= len(cleaned) <= MAX_DISPLAY_NAME_LENGTH or not cleaned.isprintable():
        raise InvalidInput(
            f"display name must be 1-{MAX_DISPLAY_NAME_LENGTH} printable characters",
            field="displayName",
        )
    return cleaned
