"""One exception root for domain errors, in families the callers tell apart. The domain knows no
protocol: the HTTP edge maps each family to a status code (homecare.api.app.status_of)."""


class HomecareError(Exception):
    """Root of every error a use case raises on purpose."""


class NotFound(HomecareError):
    """No such thing."""


class Conflict(HomecareError):
    """The thing exists but is in a state that forbids this (an expired offer, a cancelled request)."""


class Invalid(HomecareError):
    """The input breaks a rule of the domain."""


class Forbidden(HomecareError):
    """The caller may not do this."""


class Unavailable(HomecareError):
    """Something the answer needs (the internal log, another service) does not answer now; the
    same call may work later."""


class EffectLost(Exception):
    """An effect that was committed did not survive (the database restarted before it reached its
    disk): the message that caused it must be handled again. Not a HomecareError: no request
    caused it, and it never reaches the HTTP edge."""
