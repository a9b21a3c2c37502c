"""Shipped helpers for `hwprov engine` and `hwprov demo`: a private Docker engine and its image."""
