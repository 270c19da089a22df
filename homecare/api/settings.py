"""Settings of the HTTP edge itself, read from the environment (prefix ``HOMECARE_API_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Sign-in throttling and who may read /metrics."""

    model_config = SettingsConfigDict(env_prefix="HOMECARE_API_", extra="ignore")

    # Failed sign-ins (token endpoint and console login together) a username, or a client
    # address, may have before it is locked out; each further failure doubles the lockout,
    # from `lockout_base_s` up to `lockout_max_s`. Failures older than `failure_window_s` are
    # forgotten, and a success clears the username's count.
    free_failures_per_user: int = Field(default=5, ge=1)
    free_failures_per_address: int = Field(default=20, ge=1)
    lockout_base_s: float = Field(default=1.0, gt=0)
    lockout_max_s: float = Field(default=900.0, gt=0)
    failure_window_s: float = Field(default=900.0, gt=0)

    # /metrics on the console's port (the one the public reaches) needs an admin's bearer token
    # unless this is set; the components' own ports always serve it openly.
    metrics_public: bool = False
