"""Benchmarks (`make bench`): own servers, seeded through bulk loaders; they print figures."""
