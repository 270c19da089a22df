"""The fault benchmark: `python -m bench.faults` (see bench/README.md)."""
