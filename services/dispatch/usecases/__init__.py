"""Use cases of dispatch. Each takes a connection and runs inside the caller's transaction:
one use case, one transaction (a route or a worker opens it and commits)."""
