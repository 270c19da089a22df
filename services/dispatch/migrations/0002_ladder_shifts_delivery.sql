-- Dispatch, phase 2: the escalation ladder and the waiting queue, pre-emption, where residents
-- are (for the workload of busy providers and the SLA report by district), shift schedules,
-- provider positions, and what became of every command sent to a button.

ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS lat double precision;
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS lon double precision;
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS district text;  -- the resident's, when opened
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS retry_at timestamptz;  -- queued: offer again then
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS assign_warn_at timestamptz;  -- rung 1 of the ladder
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS late_flagged_at timestamptz;  -- assigned, arriving late
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS ack_shown_at timestamptz;  -- the button showed "received"
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS handed_back int NOT NULL DEFAULT 0;

UPDATE dispatch.requests SET assign_warn_at = assign_due_at WHERE assign_warn_at IS NULL;
UPDATE dispatch.requests SET late_flagged_at = sla_at_risk_at
    WHERE late_flagged_at IS NULL AND sla_at_risk_at IS NOT NULL AND status NOT IN ('open', 'offered');

CREATE INDEX IF NOT EXISTS requests_retry ON dispatch.requests (priority, urgency DESC, created_at)
    WHERE status = 'open';
CREATE INDEX IF NOT EXISTS requests_assign_warn ON dispatch.requests (assign_warn_at)
    WHERE status IN ('open', 'offered') AND sla_at_risk_at IS NULL;
CREATE INDEX IF NOT EXISTS requests_late ON dispatch.requests (sla_due_at)
    WHERE status IN ('assigned', 'en_route') AND late_flagged_at IS NULL;
CREATE INDEX IF NOT EXISTS requests_report ON dispatch.requests (created_at, service, district);

ALTER TABLE dispatch.offers ADD COLUMN IF NOT EXISTS preempts_request_id text REFERENCES dispatch.requests (id);
ALTER TABLE dispatch.offers ADD COLUMN IF NOT EXISTS score_parts jsonb;

ALTER TABLE dispatch.providers ADD COLUMN IF NOT EXISTS location_at timestamptz;

-- Planned shifts: the timer puts a provider on shift at `starts_at` and off at `ends_at`;
-- in between, the on_shift switch can still be flipped by hand.
CREATE TABLE IF NOT EXISTS dispatch.shifts (
    id          text PRIMARY KEY,
    provider_id text NOT NULL REFERENCES dispatch.providers (id) ON DELETE CASCADE,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    started_at  timestamptz,  -- when the timer applied the start
    ended_at    timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS shifts_provider ON dispatch.shifts (provider_id, starts_at);
CREATE INDEX IF NOT EXISTS shifts_to_start ON dispatch.shifts (starts_at) WHERE started_at IS NULL;
CREATE INDEX IF NOT EXISTS shifts_to_end ON dispatch.shifts (ends_at) WHERE ended_at IS NULL;

-- Delivery of commands, reported by the gateway on the command-state topic.
ALTER TABLE dispatch.outbox ADD COLUMN IF NOT EXISTS command_id text;
ALTER TABLE dispatch.outbox ADD COLUMN IF NOT EXISTS delivery text
    CHECK (delivery IN ('sent', 'acknowledged', 'expired'));
ALTER TABLE dispatch.outbox ADD COLUMN IF NOT EXISTS delivery_at timestamptz;
UPDATE dispatch.outbox SET command_id = payload -> 'command' ->> 'command_id' WHERE command_id IS NULL;
CREATE INDEX IF NOT EXISTS outbox_command ON dispatch.outbox (command_id);

-- Continuity of care and fairness are counted per provider on every match.
CREATE INDEX IF NOT EXISTS requests_provider_resident ON dispatch.requests (provider_id, resident_id)
    WHERE status = 'completed';
CREATE INDEX IF NOT EXISTS requests_provider_assigned ON dispatch.requests (provider_id, assigned_at);
