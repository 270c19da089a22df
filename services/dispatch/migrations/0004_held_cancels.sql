-- A long press (button.cancelled) handled before the press it cancels: replicas of dispatch pull
-- the same stream side by side, so a resident's press and the cancel right after it can be
-- handled by two replicas in either order. A cancel that finds no open request is held here; the
-- press, when it comes, opens its request and the held cancel closes it at once.
CREATE TABLE IF NOT EXISTS dispatch.held_cancels (
    device_id  text NOT NULL,
    event_id   text NOT NULL,
    service    text NOT NULL,
    ts         timestamptz NOT NULL,  -- when the device says the long press happened
    held_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, event_id)
);
CREATE INDEX IF NOT EXISTS held_cancels_press ON dispatch.held_cancels (device_id, service, ts);
