"""CSRF tokens: an HMAC of the session token for signed-in forms, a double-submit cookie for
the sign-in form itself (there is no session yet to bind a token to)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from homecare.settings import Settings

FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"
LOGIN_COOKIE = "homecare_login_csrf"


def secret_key(settings: Settings) -> bytes:
    """The key that signs CSRF tokens (`Settings` refuses production without one)."""
    if not settings.secret_key:
        raise ValueError("HOMECARE_SECRET_KEY must be set")
    return settings.secret_key.encode()


class CsrfSigner:
    """Derives and checks the CSRF token that belongs to a session token."""

    def __init__(self, key: bytes):
        self._key = key

    def token_for(self, session_token: str) -> str:
        """The CSRF token forms of this session must carry."""
        mac = hmac.new(self._key, b"csrf\0" + session_token.encode(), hashlib.sha256)
        return mac.hexdigest()

    def is_valid(self, session_token: str, candidate: str | None) -> bool:
        """Constant-time check of a submitted token."""
        if not candidate:
            return False
        return hmac.compare_digest(self.token_for(session_token), candidate)


def new_login_token() -> str:
    """A random value for the sign-in form's double-submit cookie."""
    return secrets.token_urlsafe(24)


def same_token(cookie: str | None, submitted: str | None) -> bool:
    """The double-submit check: the form carries what the cookie holds."""
    return bool(cookie) and bool(submitted) and hmac.compare_digest(cookie, submitted)
