"""Content keys: what decides whether a cached build output can be reused."""
