"""The device simulator: the reference client of mqtt-v1, and simulated providers.

`Simulation(api_url, broker_url, scenario, admin_username, admin_password)` enrols homes (a
resident with a bed and a button) and providers through the operator API, runs every device as
its own MQTT connection (all of them driven by one thread) and the providers through their own
logins. Behaviour (`bed`, `button`, `providers`) is pure and seeded; `transport`, `session` and
`fleet` carry it to the broker, `crew` to the API.
"""

from .roster import Roster
from .run import Simulation
from .scenario import PRESETS, ProviderConduct, Scenario

__all__ = ["PRESETS", "ProviderConduct", "Roster", "Scenario", "Simulation"]
