"""The rules of dispatch as plain Python: policies, the request lifecycle, matching, SLA clocks."""
