"""Shared core of the home-care network: contract, topics, settings, database, MQTT plumbing."""
