"""Redis-backed stores: ids, accounts (and, later, tweets and feeds), each owning its keys."""
