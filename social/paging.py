"""Page sizes: every list is paginated with a hard maximum."""

from __future__ import annotations

from social.errors import InvalidInput


def page_size(first: int, limit: int) -> int:
    """`first` if within 1..`limit` (MAX_PAGE_SIZE), else InvalidInput."""
    if not 1 <= first <= limit:
        raise InvalidInput(f"first must be between 1 and {limit}", field="first")
    return first
