-- Notices to people outside the console (homecare/notify): written in the transaction of the
-- change that causes them (an escalation, a re-announcement), delivered by the sender loop,
-- which keeps each delivery's state here and writes its result into the request's timeline.
CREATE TABLE IF NOT EXISTS dispatch.notifications (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_id  text        NOT NULL REFERENCES dispatch.requests (id) ON DELETE CASCADE,
    notice      jsonb       NOT NULL,
    deliveries  jsonb,      -- null until routed
    created_at  timestamptz NOT NULL DEFAULT now(),
    due_at      timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz
);
CREATE INDEX IF NOT EXISTS notifications_due ON dispatch.notifications (due_at) WHERE done_at IS NULL;
CREATE INDEX IF NOT EXISTS notifications_subject ON dispatch.notifications (subject_id);

-- An escalated request nobody has taken is announced again: how often, and when last.
ALTER TABLE dispatch.requests
    ADD COLUMN IF NOT EXISTS reannounced int NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS reannounced_at timestamptz;
CREATE INDEX IF NOT EXISTS requests_escalated_waiting ON dispatch.requests (escalated_at)
    WHERE status IN ('open', 'offered', 'escalated') AND escalated_at IS NOT NULL;
