"""Tweet text rules: NFC, something visible, no bidirectional overrides, Twitter's weighted
length. The rules are pure (tested without servers); one test goes through the API."""

from __future__ import annotations

import unicodedata

import httpx
import pytest

from social import text as tweet_text
from social.errors import InvalidInput as BadUserInput
from tests.gql import CREATE_TWEET, gql_error, sign_up, tweet

LINK = "https://example.com/" + "a" * 120  # counts 23, however long


@pytest.mark.parametrize(
    "text",
    [
        "x" * 280,
        "日本語" * 46 + "日",  # 2 each: 278 + 2
        "🐦" * 140,  # an emoji counts 2
        "👨‍👩‍👧" * 140,  # one emoji of five code points (ZWJ sequence) counts 2 too
        f"{LINK} " * 11 + "x" * 16,  # 11 links of 23 + 11 spaces + 16 = 280
        "العربية مع\u200f علامة",  # a right-to-left mark is not an override
    ],
)
def test_weighted_length_up_to_280_is_accepted(text: str) -> None:
    assert tweet_text.normalize(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "x" * 281,
        "日本語" * 47,  # 141 CJK characters weigh 282
        "🐦" * 141,
        f"{LINK} " * 12 + "x" * 1,
        "x" * (tweet_text.MAX_TWEET_CODE_POINTS + 1),
    ],
)
def test_weighted_length_over_280_is_refused(text: str) -> None:
    with pytest.raises(BadUserInput, match="at most 280"):
        tweet_text.normalize(text)


@pytest.mark.parametrize(
    "text",
    [
        "\u200b\u200b",  # zero-width spaces
        "\u3164",  # Hangul filler, a "letter" that draws nothing
        "\u2800 \u2800",  # blank Braille patterns
        "\u00ad\u2060\ufeff",  # soft hyphen, word joiner, BOM
        "\u0301\u0301",  # combining marks without a base character
        "\u3000\u205f",  # wide spaces
    ],
)
def test_text_with_nothing_visible_is_refused(text: str) -> None:
    with pytest.raises(BadUserInput, match="visible"):
        tweet_text.normalize(text)


@pytest.mark.parametrize(
    "control", [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
)
def test_bidirectional_overrides_and_isolates_are_refused(control: str) -> None:
    with pytest.raises(BadUserInput, match="bidirectional"):
        tweet_text.normalize(f"innocent {control}txt.exe")


def test_text_is_stored_in_nfc_and_trimmed() -> None:
    decomposed = unicodedata.normalize("NFD", "café crème")
    assert tweet_text.normalize(f"  {decomposed}\r\n ") == "café crème"
    assert tweet_text.normalize(unicodedata.normalize("NFD", "é") * 280) == "é" * 280


async def test_api_applies_the_rules(client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(client, "alice")
    assert (await tweet(client, token, "🐦" * 140))["text"] == "🐦" * 140
    created = await tweet(client, token, unicodedata.normalize("NFD", "crème brûlée"))
    assert created["text"] == "crème brûlée"
    for bad in ["🐦" * 141, "\u3164\u200b", "evil \u202egnp.exe"]:
        code, _ = await gql_error(client, CREATE_TWEET, {"text": bad}, token=token)
        assert code == "BAD_USER_INPUT", bad
