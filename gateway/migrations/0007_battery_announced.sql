-- A status whose battery moves to another 5 % band is announced even when the device stays online,
-- so the battery rule (telemetry) sees a battery that runs down. `battery_at` dates the level (the
-- announcement's time, newer than the state's); `announced_battery` is the level last announced.
ALTER TABLE gateway.devices ADD COLUMN IF NOT EXISTS battery_at timestamptz;
ALTER TABLE gateway.devices ADD COLUMN IF NOT EXISTS announced_battery double precision;
-- Levels reported before this migration are dated by the last sighting, so their first
-- announcement is newer than the state consumers hold, and a battery already low is alerted.
UPDATE gateway.devices SET battery_at = coalesce(last_seen, state_changed_at)
    WHERE battery IS NOT NULL AND battery_at IS NULL;
-- Devices whose battery band was not announced: scanned by the sweep with the unannounced states.
CREATE INDEX IF NOT EXISTS devices_battery_unannounced ON gateway.devices (battery_at)
    WHERE state <> 'never_seen' AND battery IS NOT NULL
      AND (floor(battery * 100 + 1e-6)::int / 5) IS DISTINCT FROM (floor(announced_battery * 100 + 1e-6)::int / 5);
