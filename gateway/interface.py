"""The gateway's one public interface: what other components may know of devices. Everything
else in `gateway` is its own (an import-linter contract in pyproject.toml keeps it so)."""

from .registry import (
    Device,
    beds_of,
    beds_per_district,
    devices_of,
    devices_of_residents,
    never_connected,
    residents_of_devices,
    set_report_interval,
)
from .registry import get as get_device

__all__ = ["Device", "beds_of", "beds_per_district", "devices_of", "devices_of_residents", "get_device",
           "never_connected", "residents_of_devices", "set_report_interval"]
