-- The stuck-button rule's state (services/telemetry/domain/rules/button.py, over the shared
-- definition in homecare/buttons.py): each button key's run of presses, so it carries on across
-- restarts and replicas, and the timer that clears the alert once no stuck press has come for a
-- while (claimed with FOR UPDATE SKIP LOCKED, like the other rule timers).
CREATE TABLE IF NOT EXISTS telemetry.button_keys (
    device_id      text NOT NULL,
    service        text NOT NULL,
    resident_id    text NOT NULL,
    started_at     timestamptz NOT NULL,  -- the run's first press, by the device's clock
    last_at        timestamptz NOT NULL,
    presses        int NOT NULL CHECK (presses >= 1),
    stuck_since    timestamptz,
    last_event_id  text NOT NULL,
    clear_due      timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, service)
);
CREATE INDEX IF NOT EXISTS button_keys_clear_due ON telemetry.button_keys (clear_due) WHERE clear_due IS NOT NULL;
