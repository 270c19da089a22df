"""One exception root for domain errors; the HTTP edge maps each family to a status code."""


class HomecareError(Exception):
    """Root of every error a use case raises on purpose."""

    status_code = 400


class NotFound(HomecareError):
    status_code = 404


class Conflict(HomecareError):
    """The thing exists but is in a state that forbids this (an expired offer, a cancelled request)."""

    status_code = 409


class Invalid(HomecareError):
    status_code = 422


class Forbidden(HomecareError):
    status_code = 403


class EffectLost(Exception):
    """An effect that was committed did not survive (the database restarted before it reached its
    disk): the message that caused it must be handled again. Not a HomecareError: no request
    caused it, and it never reaches the HTTP edge."""
