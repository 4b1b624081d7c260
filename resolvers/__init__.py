"""Resolvers: translation only. Arguments and global ids in, one call into the domain (social/),
domain errors mapped to GraphQL codes in one place (errors.py); the per-request context carries
the services, the DataLoaders and the caller's identity."""
