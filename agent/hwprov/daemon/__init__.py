"""`hwprov run`: the daemon that follows hardware, compose edits and container starts."""
