"""Dispatch benchmark: simulated days through the real domain core against a greedy baseline and
a hindsight optimum, and press -> first offer through the running service (`python -m bench.dispatch`)."""
