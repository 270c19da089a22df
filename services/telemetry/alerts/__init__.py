"""Alerts about residents and their devices: a pure rule core (`rules/`), storage, use cases."""
