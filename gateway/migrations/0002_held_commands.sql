-- Commands to a device that has never connected have no broker session to wait in: they are
-- held here and published when the device first comes online.
ALTER TABLE gateway.commands ADD COLUMN IF NOT EXISTS held boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS commands_held ON gateway.commands (device_id) WHERE held AND state = 'queued';
-- Released or ordered but not yet acknowledged by the broker: re-published by the sweep.
CREATE INDEX IF NOT EXISTS commands_unsent ON gateway.commands (updated_at)
    WHERE state = 'queued' AND NOT held;
