-- Notices to people outside the console (homecare/notify): written in the transaction that opens
-- an alert or announces it again, delivered by the sender loop, which keeps each delivery's
-- state here and writes its result into the alert's timeline.
CREATE TABLE IF NOT EXISTS telemetry.notifications (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_id  text        NOT NULL REFERENCES telemetry.alerts (id),
    notice      jsonb       NOT NULL,
    deliveries  jsonb,      -- null until routed
    created_at  timestamptz NOT NULL DEFAULT now(),
    due_at      timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz
);
CREATE INDEX IF NOT EXISTS notifications_due ON telemetry.notifications (due_at) WHERE done_at IS NULL;
CREATE INDEX IF NOT EXISTS notifications_subject ON telemetry.notifications (subject_id);

-- A critical alert nobody acknowledges is announced again: how often, and when last.
ALTER TABLE telemetry.alerts
    ADD COLUMN IF NOT EXISTS reannounced int NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS reannounced_at timestamptz;
