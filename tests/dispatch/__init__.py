"""Dispatch service tests."""
