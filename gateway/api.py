"""`/api/v1/devices`: provisioning and decommissioning (admin), reading (admin, dispatcher)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from homecare.api.deps import AdminUser, DbConn, DispatcherUser
from homecare.api.guard import INT64
from homecare.api.types import Identifier
from homecare.auth import audit
from homecare.contract import DeviceKind
from homecare.residents import store as residents

from . import registry
from .registry import Device
from .service import DeviceAdmin


class NewDevice(BaseModel):
    id: Identifier = Field(examples=["bed-000123"])
    kind: DeviceKind
    resident_id: Identifier


class ProvisionedDevice(BaseModel):
    id: str
    kind: DeviceKind
    resident_id: str
    secret: str = Field(description="The device's MQTT password; shown this once.")
    mqtt_url: str = Field(
        description="The broker this device must use (`mqtts://host:port` or `mqtt://host:port`):"
        " its shard's, for life.", examples=["mqtts://broker-a.example:8883"],
    )


def devices_router(admin: DeviceAdmin) -> APIRouter:
    """The routes, bound to the use cases of this process."""
    router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

    @router.post("", status_code=201, response_model=ProvisionedDevice)
    def provision(body: NewDevice, conn: DbConn, user: AdminUser) -> ProvisionedDevice:
        """Provision a device for a resident; the secret is returned this once."""
        device, secret = admin.provision(conn, body.id, body.kind, body.resident_id)
        audit.record(conn, audit.actor_of(user), "device.provisioned", f"device:{device.id}",
                     {"kind": str(device.kind), "resident_id": device.resident_id})
        return ProvisionedDevice(
            id=device.id, kind=device.kind, resident_id=device.resident_id, secret=secret,
            mqtt_url=admin.mqtt_url(device),
        )

    @router.get("", response_model=list[Device])
    def list_devices(
        conn: DbConn, user: DispatcherUser, resident_id: str | None = None,
        kind: DeviceKind | None = None, limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=INT64),
    ) -> list[Device]:
        """Active devices of your districts' residents: those of one resident, or all of them a
        page at a time."""
        districts = user.scope.districts
        if resident_id is not None:
            if districts is not None and residents.districts_of(conn, [resident_id]).get(resident_id) not in districts:
                return []
            return [d for d in registry.devices_of(conn, resident_id) if kind in (None, d.kind)]
        return registry.list_devices(conn, kind=kind, limit=limit, offset=offset, districts=districts)

    @router.get("/{device_id}", response_model=Device)
    def get_device(device_id: str, conn: DbConn, user: DispatcherUser) -> Device:
        """One device with its liveness, battery and firmware; 404 for one of another district."""
        return registry.get(conn, device_id, user.scope.districts)

    @router.delete("/{device_id}", status_code=204)
    def revoke(device_id: str, conn: DbConn, user: AdminUser) -> Response:
        """Decommission a device: its credentials stop working at once."""
        device = admin.revoke(conn, device_id)
        audit.record(conn, audit.actor_of(user), "device.revoked", f"device:{device_id}",
                     {"resident_id": device.resident_id})
        return Response(status_code=204)

    return router
