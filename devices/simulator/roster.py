"""What provisioning created on the platform: ids, device secrets, provider logins."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from homecare.contract import DeviceKind, Service


class DeviceCredentials(BaseModel):
    id: str
    kind: DeviceKind
    resident_id: str
    secret: str
    # The broker (shard) provisioning placed the device on (`mqtt_url` in the API's answer);
    # empty: the simulation's broker.
    mqtt_url: str = ""


class EnrolledResident(BaseModel):
    index: int  # into the scenario's generated residents
    id: str
    name: str
    district: str
    lat: float
    lon: float
    bed: DeviceCredentials
    button: DeviceCredentials


class EnrolledProvider(BaseModel):
    index: int
    id: str
    name: str
    services: list[Service]
    lat: float
    lon: float
    capacity: int
    username: str
    password: str


class Roster(BaseModel):
    """Everything a simulation needs to act as the devices and providers it enrolled."""

    run_tag: str
    residents: list[EnrolledResident] = []
    providers: list[EnrolledProvider] = []
    care_plans: list[str] = []  # ids of the care plans provisioning gave the homes
    planned_days: list[str] = []  # days (YYYY-MM-DD) the platform was asked to plan

    def devices(self) -> list[DeviceCredentials]:
        return [d for r in self.residents for d in (r.bed, r.button)]

    def save(self, path: str | Path) -> None:
        """Write as JSON (it holds device secrets and passwords: keep it private)."""
        path = Path(path)
        path.write_text(self.model_dump_json(indent=1), encoding="utf-8")
        path.chmod(0o600)

    @classmethod
    def load(cls, path: str | Path) -> Roster:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
