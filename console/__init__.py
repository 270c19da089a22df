"""The web console: sign-in and the dispatchers' live board of service requests."""
