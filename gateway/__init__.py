"""The device edge: provisioning, mqtt-v1 validation, de-duplication, forwarding, commands."""
