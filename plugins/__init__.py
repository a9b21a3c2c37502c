"""hwprov's built-in plugins: plain modules of @hookimpl functions."""
