"""The fixture boards, installed as the package data of hwprov.boards (pyproject.toml)."""
