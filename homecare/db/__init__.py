"""Database access: connection pools and versioned migrations."""

from .migrate import Flavour, detect_flavour, migrate
from .pool import open_pool

__all__ = ["Flavour", "detect_flavour", "migrate", "open_pool"]
