"""The channels a notice goes out on, behind one interface: `send(to, notice)` returns None when
the channel took it, or raises `DeliveryError` with the reason.

- `EmailChannel`: SMTP with the standard library (`smtp://`, `smtp+starttls://`, `smtps://`).
- `WebhookChannel`: a JSON POST for an SMS or paging gateway, signed with a shared secret:
  `X-Homecare-Timestamp` (Unix seconds) and `X-Homecare-Signature: sha256=<hex>`, the HMAC-SHA256
  of `<timestamp>.<body>`. A receiver checks both with `verify`, refusing old timestamps, so a
  captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httpx

from .model import Notice

SIGNATURE_HEADER = "X-Homecare-Signature"
TIMESTAMP_HEADER = "X-Homecare-Timestamp"
REPLAY_WINDOW_S = 300


class DeliveryError(Exception):
    """The channel did not take the notice; the message says why (kept in the timeline)."""


class Channel(Protocol):
    name: str

    def send(self, to: str, notice: Notice) -> None: ...


def subject_line(notice: Notice) -> str:
    return f"[{notice.severity.upper()}] {notice.title}"[:200]


def body_text(notice: Notice) -> str:
    lines = [notice.text, ""]
    if notice.resident_name:
        lines.append(f"Resident: {notice.resident_name}")
    if notice.district:
        lines.append(f"District: {notice.district}")
    if notice.link:
        lines.append(f"Open: {notice.link}")
    lines.append(f"Reference: {notice.subject_id} ({notice.trigger})")
    return "\n".join(lines)


class EmailChannel:
    """Mail through an SMTP server: `smtp://[user:password@]host[:port]`; `smtp+starttls://` to
    upgrade the connection, `smtps://` for TLS from the start."""

    name = "email"

    def __init__(self, url: str, sender: str, timeout_s: float = 10.0):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname:
            raise ValueError("the SMTP url must be smtp://, smtp+starttls:// or smtps://host[:port]")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout_s = timeout_s

    def send(self, to: str, notice: Notice) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject_line(notice)
        message["X-Homecare-Reference"] = notice.subject_id
        message.set_content(body_text(notice))
        try:
            if self.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout_s, context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with client:
                if self.scheme == "smtp+starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                refused = client.send_message(message)
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            raise DeliveryError(f"smtp {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc
        if refused:
            raise DeliveryError(f"smtp {self.host}:{self.port} refused {', '.join(refused)}")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float | None = None,
           window_s: float = REPLAY_WINDOW_S) -> str | None:
    """Why a webhook request must be refused, or None when it is genuine and fresh."""
    if not timestamp or not signature:
        return "missing signature or timestamp"
    try:
        sent = int(timestamp)
    except ValueError:
        return "timestamp is not a number"
    if abs((now if now is not None else time.time()) - sent) > window_s:
        return "timestamp outside the replay window"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "signature does not match"
    return None


class WebhookChannel:
    """A signed POST per recipient: {"to", "severity", "title", "text", "link", "reference",
    "trigger"}; a 2xx answer means the gateway took it."""

    name = "webhook"

    def __init__(self, url: str, secret: str, timeout_s: float = 10.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError("the webhook url must be http:// or https://")
        if not secret:
            raise ValueError("a webhook needs a shared secret to sign with")
        self.url = url
        self.secret = secret
        self.timeout_s = timeout_s

    def send(self, to: str, notice: Notice) -> None:
        body = json.dumps({
            "to": to, "severity": notice.severity, "title": notice.title, "text": notice.text,
            "link": notice.link, "reference": notice.subject_id, "trigger": notice.trigger,
            "district": notice.district, "resident": notice.resident_name,
        }, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self.secret, timestamp, body)}
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise DeliveryError(f"webhook answered {response.status_code}: {response.text[:200]}")
