"""Write the schema's SDL to schema.graphql (committed; tests/test_schema_sdl.py checks it)."""

from pathlib import Path

from schema.build import build_schema

SDL_PATH = Path(__file__).resolve().parent.parent / "schema.graphql"

if __name__ == "__main__":
    SDL_PATH.write_text(build_schema(max_query_depth=1).as_str() + "\n")
