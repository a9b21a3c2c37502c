"""Reading compose files: the Compose v2.1 subset the balena supervisor implements."""
