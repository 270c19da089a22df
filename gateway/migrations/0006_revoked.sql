-- The housekeeping sweep asks which devices were revoked in the last few minutes (to drop them from
-- every edge's cache); revoked devices are few, and the sweep should not read every device to
-- find them.
CREATE INDEX IF NOT EXISTS devices_revoked ON gateway.devices (revoked_at) WHERE revoked_at IS NOT NULL;
