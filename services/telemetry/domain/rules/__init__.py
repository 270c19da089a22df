"""The alert rules: plain functions over samples, minute rollups, events and device states.

No I/O here: a rule gets what it looks at and returns Findings (an alert should be open) or
Clearances (a device alert may close). Storage and timing live in the layer above.
"""
