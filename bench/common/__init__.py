"""Helpers shared by the load and fault benchmarks: the network under test (embedded database
and broker, components as subprocesses), the simulator as a subprocess, the bare pipe, metrics,
the machine description, result files and tables."""
