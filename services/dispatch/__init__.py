"""Dispatch: service requests from buttons, phones and alerts, matched to providers."""
