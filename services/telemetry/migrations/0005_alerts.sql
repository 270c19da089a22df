-- Alerts about residents (category person) and their devices (category device), with their
-- evidence and a timeline. At most one alert per rule and subject (the resident for person
-- alerts, the device for device alerts) is not resolved at any time.
CREATE TABLE IF NOT EXISTS telemetry.alerts (
    id               text        PRIMARY KEY,
    resident_id      text        NOT NULL,
    device_id        text,
    rule             text        NOT NULL,
    category         text        NOT NULL CHECK (category IN ('person', 'device')),
    severity         text        NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    state            text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    subject          text        NOT NULL,
    summary          text        NOT NULL,
    evidence         jsonb       NOT NULL DEFAULT '{}',
    started_at       timestamptz NOT NULL,
    opened_at        timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    assignee         text,
    resolved_at      timestamptz,
    resolved_by      text,
    resolution_note  text,
    occurrences      int         NOT NULL DEFAULT 1,
    last_occurred_at timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_unresolved ON telemetry.alerts (rule, subject) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_by_state ON telemetry.alerts (state, opened_at DESC);
CREATE INDEX IF NOT EXISTS alerts_by_resident ON telemetry.alerts (resident_id, opened_at DESC);

-- Every change of an alert, oldest first. `occurrence` is the idempotency key of a finding
-- (the same run of samples, the same event): recorded once, so a re-run or a redelivered event
-- changes nothing.
CREATE TABLE IF NOT EXISTS telemetry.alert_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    text        NOT NULL REFERENCES telemetry.alerts (id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    kind        text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}',
    occurrence  text        UNIQUE
);
CREATE INDEX IF NOT EXISTS alert_events_by_alert ON telemetry.alert_events (alert_id, id);

-- A resident's own thresholds (overrides of the service defaults), as JSON.
CREATE TABLE IF NOT EXISTS telemetry.alert_settings (
    resident_id  text        PRIMARY KEY,
    settings     jsonb       NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text
);

-- The latest episode of a sample condition per rule and device, so a later look at an
-- overlapping stretch of samples is recognised as the same occurrence.
CREATE TABLE IF NOT EXISTS telemetry.episodes (
    rule          text        NOT NULL,
    subject       text        NOT NULL,
    started_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    PRIMARY KEY (rule, subject)
);

-- Timers live here: a bed's latest exit and entry (and when to look again), a device's latest
-- liveness (and when an offline device becomes an alert). Scanned with FOR UPDATE SKIP LOCKED.
CREATE TABLE IF NOT EXISTS telemetry.bed_presence (
    device_id      text        PRIMARY KEY,
    resident_id    text        NOT NULL,
    exited_at      timestamptz,
    entered_at     timestamptz,
    attended_exit  boolean     NOT NULL DEFAULT false,
    due_at         timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS bed_presence_due ON telemetry.bed_presence (due_at) WHERE due_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS telemetry.device_status (
    device_id    text        PRIMARY KEY,
    resident_id  text        NOT NULL,
    kind         text        NOT NULL,
    state        text        NOT NULL,
    at           timestamptz NOT NULL,
    battery      real,
    due_at       timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS device_status_due ON telemetry.device_status (due_at) WHERE due_at IS NOT NULL;

-- Each resident's nights as the baseline rule saw them (also marks a night as evaluated).
CREATE TABLE IF NOT EXISTS telemetry.night_summaries (
    resident_id               text        NOT NULL,
    night                     date        NOT NULL,
    heart_rate                float8,
    heart_rate_minutes        int         NOT NULL,
    respiration_rate          float8,
    respiration_rate_minutes  int         NOT NULL,
    evaluated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resident_id, night)
);
