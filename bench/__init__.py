"""hwprov's benchmarks: each figure measured against its baseline in one run on a private engine.

`bash bench/run.sh` (or `python -m bench`) runs them all; see bench/README.md.
"""
