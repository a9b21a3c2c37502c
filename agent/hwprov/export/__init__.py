"""Other files hwprov writes from what it sees: CDI specs, a migrated compose file."""
