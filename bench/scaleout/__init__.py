"""`python -m bench.scaleout`: the city shape on one machine under faults."""
