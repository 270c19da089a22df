-- Dispatch: providers, service requests with their timelines, offers, and the command outbox.
CREATE SCHEMA IF NOT EXISTS dispatch;

CREATE TABLE IF NOT EXISTS dispatch.providers (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    services    text[] NOT NULL CHECK (cardinality(services) > 0),
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    capacity    int NOT NULL CHECK (capacity > 0),
    on_shift    boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS providers_services ON dispatch.providers USING gin (services);

CREATE TABLE IF NOT EXISTS dispatch.requests (
    id               text PRIMARY KEY,
    resident_id      text NOT NULL,
    device_id        text,  -- the button to notify; null for phone and alert requests
    service          text NOT NULL CHECK (service IN ('meal', 'bathing', 'escort', 'mobility', 'emergency')),
    priority         smallint NOT NULL CHECK (priority BETWEEN 1 AND 5),
    urgency          smallint NOT NULL DEFAULT 1 CHECK (urgency >= 1),
    status           text NOT NULL CHECK (status IN
                       ('open', 'offered', 'assigned', 'en_route', 'arrived', 'completed', 'cancelled', 'escalated')),
    source           text NOT NULL CHECK (source IN ('button', 'phone', 'alert')),
    source_key       text UNIQUE,  -- idempotency: "device:event_id", "alert:<id>"
    provider_id      text REFERENCES dispatch.providers (id),
    note             text,
    created_at       timestamptz NOT NULL,
    pressed_at       timestamptz,  -- when the resident pressed, by the device's clock
    acknowledged_at  timestamptz,
    offered_at       timestamptz,
    assigned_at      timestamptz,
    en_route_at      timestamptz,
    arrived_at       timestamptz,
    completed_at     timestamptz,
    cancelled_at     timestamptz,
    escalated_at     timestamptz,
    assign_due_at    timestamptz NOT NULL,
    sla_due_at       timestamptz NOT NULL,
    sla_at_risk_at   timestamptz,  -- set once, when an assigned request was found late
    eta_minutes      int,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- One open request per resident and service: a second press joins the open one.
CREATE UNIQUE INDEX IF NOT EXISTS requests_one_active ON dispatch.requests (resident_id, service)
    WHERE status IN ('open', 'offered', 'assigned', 'en_route', 'arrived', 'escalated');
CREATE INDEX IF NOT EXISTS requests_created ON dispatch.requests (created_at DESC);
CREATE INDEX IF NOT EXISTS requests_status_created ON dispatch.requests (status, created_at DESC);
CREATE INDEX IF NOT EXISTS requests_resident ON dispatch.requests (resident_id, created_at DESC);
CREATE INDEX IF NOT EXISTS requests_provider_active ON dispatch.requests (provider_id)
    WHERE status IN ('assigned', 'en_route', 'arrived');
CREATE INDEX IF NOT EXISTS requests_assign_due ON dispatch.requests (assign_due_at)
    WHERE status IN ('open', 'offered');
CREATE INDEX IF NOT EXISTS requests_sla_due ON dispatch.requests (sla_due_at)
    WHERE status IN ('assigned', 'en_route') AND sla_at_risk_at IS NULL;

CREATE TABLE IF NOT EXISTS dispatch.timeline (
    id          bigserial PRIMARY KEY,
    request_id  text NOT NULL REFERENCES dispatch.requests (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    kind        text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS timeline_request ON dispatch.timeline (request_id, id);

CREATE TABLE IF NOT EXISTS dispatch.offers (
    id           text PRIMARY KEY,
    request_id   text NOT NULL REFERENCES dispatch.requests (id) ON DELETE CASCADE,
    provider_id  text NOT NULL REFERENCES dispatch.providers (id),
    status       text NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'expired', 'withdrawn')),
    eta_minutes  int,
    score        double precision,
    created_at   timestamptz NOT NULL,
    deadline_at  timestamptz NOT NULL,
    answered_at  timestamptz
);
-- One provider at a time is asked.
CREATE UNIQUE INDEX IF NOT EXISTS offers_one_pending ON dispatch.offers (request_id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS offers_deadline ON dispatch.offers (deadline_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS offers_provider ON dispatch.offers (provider_id, status, created_at DESC);
CREATE INDEX IF NOT EXISTS offers_request ON dispatch.offers (request_id);

-- Commands for devices, written in the transaction of the change that causes them.
CREATE TABLE IF NOT EXISTS dispatch.outbox (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    request_id  text,
    kind        text NOT NULL,  -- the command type, for metrics and logs
    payload     jsonb NOT NULL,
    origin_at   timestamptz,  -- when its cause happened (the press), for latency metrics
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON dispatch.outbox (id) WHERE sent_at IS NULL;

CREATE TABLE IF NOT EXISTS dispatch.processed_events (
    device_id     text NOT NULL,
    event_id      text NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, event_id)
);
