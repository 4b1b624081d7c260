"""The committed schema.graphql is what the code serves.

Regenerate it with `python -m tools.print_schema`.
"""

from schema.build import build_schema
from tools.print_schema import SDL_PATH


def test_committed_sdl_is_current() -> None:
    assert SDL_PATH.read_text() == build_schema(max_query_depth=1).as_str() + "\n"
