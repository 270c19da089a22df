"""Settings of notifications (environment prefix `HOMECARE_NOTIFY_`), read by dispatch and
telemetry alike."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .channels import Channel, EmailChannel, WebhookChannel
from .model import SEVERITIES, Reannounce, RoutingRule


class NotifySettings(BaseSettings):
    """Routing rules, the channels' addresses, re-announcing and the sender's retries."""

    model_config = SettingsConfigDict(env_prefix="HOMECARE_NOTIFY_", extra="ignore")

    # JSON list of routing rules (model.RoutingRule), e.g.
    # [{"severities": ["critical"], "channel": "email", "recipients": ["oncall@example.org", "family"]},
    #  {"services": ["emergency"], "districts": ["North"], "channel": "webhook", "recipients": ["+3612345"]}]
    # None: nobody outside the console is told.
    rules: list[RoutingRule] = Field(default_factory=list, max_length=100)
    # smtp://[user:password@]host[:port] (or smtp+starttls://, smtps://); empty: no e-mail.
    smtp_url: str = ""
    smtp_from: str = Field(default="homecare@localhost", max_length=254)
    # The SMS or paging gateway's URL and the secret the requests are signed with; empty: no webhook.
    webhook_url: str = ""
    webhook_secret: str = ""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Where the console is, for links in messages (e.g. https://care.example.org); empty: no links.
    console_url: str = Field(default="", max_length=500)

    # A critical alert nobody acknowledged, or an escalated request of these services nobody has
    # taken, is announced again this often (on the board and through the rules).
    reannounce_s: float = Field(default=300.0, ge=10)
    reannounce_severities: list[str] = Field(default_factory=lambda: ["critical"])
    reannounce_services: list[str] = Field(default_factory=lambda: ["emergency"])

    # The sender: tries per delivery, the wait before a retry (doubling up to the maximum), how
    # often it looks for due notices, and how long a claimed notice is held by one replica.
    max_attempts: int = Field(default=5, ge=1, le=20)
    retry_s: float = Field(default=30.0, gt=0)
    retry_max_s: float = Field(default=900.0, gt=0)
    poll_s: float = Field(default=2.0, gt=0)
    lease_s: float = Field(default=120.0, gt=0)

    def reannounce(self) -> Reannounce:
        unknown = set(self.reannounce_severities) - set(SEVERITIES)
        if unknown:
            raise ValueError(f"HOMECARE_NOTIFY_REANNOUNCE_SEVERITIES: unknown {', '.join(sorted(unknown))}")
        return Reannounce(timedelta(seconds=self.reannounce_s), tuple(self.reannounce_severities),
                          tuple(self.reannounce_services))

    def channels(self) -> dict[str, Channel]:
        """The channels that are configured, by name."""
        found: dict[str, Channel] = {}
        if self.smtp_url:
            found["email"] = EmailChannel(self.smtp_url, self.smtp_from, self.timeout_s)
        if self.webhook_url:
            found["webhook"] = WebhookChannel(self.webhook_url, self.webhook_secret, self.timeout_s)
        return found

    def link(self, path: str) -> str | None:
        """The console's URL of a page, when the console's address is set."""
        return f"{self.console_url.rstrip('/')}{path}" if self.console_url else None
