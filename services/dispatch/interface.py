"""Dispatch's one public interface: the reads, the use cases and the settings other components
(the console, telemetry) may use. Everything else in `services.dispatch` is its own (an
import-linter contract in pyproject.toml keeps it so)."""

from .api import actor_of, ask_device_selftest, device_in_scope, provider_in_scope, request_in_scope
from .domain.requests import ACTIVE, TRANSITIONS, WITH_PROVIDER, Status
from .queries import (
    candidates,
    count_by_status,
    district_of,
    get_request,
    list_providers,
    list_requests,
    open_requests_for,
    sla_csv,
    sla_report,
)
from .settings import DispatchSettings
from .store.offers import list_offers
from .store.providers import get as get_provider
from .usecases.context import Dispatch
from .usecases.context import from_settings as context
from .usecases.device_commands import ask_selftest
from .usecases.intake import Intake, phoned
from .usecases.offering import accept_offer, decline_offer
from .usecases.progress import add_note, advance, assign_manually
from .usecases.progress import cancel as cancel_request
from .usecases.providers import heartbeat, set_shift

__all__ = [
    "ACTIVE", "TRANSITIONS", "WITH_PROVIDER", "Dispatch", "DispatchSettings", "Intake", "Status", "accept_offer",
    "actor_of", "add_note", "advance", "ask_device_selftest", "ask_selftest", "assign_manually", "cancel_request",
    "candidates", "context", "device_in_scope", "district_of", "provider_in_scope", "request_in_scope",
    "count_by_status", "decline_offer", "get_provider", "get_request", "heartbeat", "list_offers", "list_providers",
    "list_requests", "open_requests_for", "phoned", "set_shift", "sla_csv", "sla_report",
]
