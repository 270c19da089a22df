-- Devices provisioned and never connected, oldest first: telemetry's never-connected check reads
-- them every few minutes (a device still in its box a day after provisioning is chased).
CREATE INDEX IF NOT EXISTS devices_never_seen ON gateway.devices (created_at)
    WHERE state = 'never_seen' AND revoked_at IS NULL;
