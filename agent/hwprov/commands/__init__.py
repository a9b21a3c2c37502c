"""The `hwprov` command line: one module per command, each a thin parser over the stages."""
