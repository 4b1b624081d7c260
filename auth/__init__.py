"""Passwords (argon2, off the event loop) and bearer tokens (signed JWT)."""
