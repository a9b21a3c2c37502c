"""The board simulator: a umockdev testbed built from a board description in hw-fixtures/."""
