"""CSRF tokens are bound to the session and to the secret key."""

from __future__ import annotations

from console.csrf import CsrfSigner, same_token, secret_key
from homecare.settings import Settings


def test_token_is_bound_to_session_and_key():
    signer = CsrfSigner(b"key-one")

    token = signer.token_for("session-a")

    assert signer.is_valid("session-a", token)
    assert not signer.is_valid("session-b", token)
    assert not CsrfSigner(b"key-two").is_valid("session-a", token)
    assert not signer.is_valid("session-a", None)
    assert not signer.is_valid("session-a", "")


def test_double_submit_needs_both_halves_equal():
    assert same_token("abc", "abc")
    assert not same_token("abc", "abd")
    assert not same_token(None, "abc")
    assert not same_token("abc", "")


def test_the_key_is_the_configured_secret():
    assert secret_key(Settings(secret_key="s3cret", environment="production")) == b"s3cret"
    # Development without a key gets a random one per process from Settings itself.
    assert secret_key(Settings(secret_key="", environment="development"))
