"""Benchmarks of the home-care network; each runs with one command (see its README section)."""
