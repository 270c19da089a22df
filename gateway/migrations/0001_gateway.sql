-- The device edge: provisioned devices, de-duplication of events, commands, rejections.
CREATE SCHEMA IF NOT EXISTS gateway;

CREATE TABLE IF NOT EXISTS gateway.devices (
    id                 text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{2,63}$'),
    kind               text NOT NULL CHECK (kind IN ('bed', 'button')),
    resident_id        text NOT NULL REFERENCES registry.residents (id),
    secret_hash        text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz,
    online             boolean NOT NULL DEFAULT false,
    state              text NOT NULL DEFAULT 'never_seen'
                       CHECK (state IN ('never_seen', 'online', 'offline', 'silent')),
    state_changed_at   timestamptz NOT NULL DEFAULT now(),
    -- The last state published on the internal device-state topic. A row whose state differs
    -- is an announcement still owed (the gateway crashed between commit and PUBACK).
    announced_state    text,
    last_seen          timestamptz,
    battery            double precision CHECK (battery BETWEEN 0 AND 1),
    fw                 text,
    rssi               integer,
    report_interval_s  integer NOT NULL DEFAULT 10 CHECK (report_interval_s BETWEEN 1 AND 600)
);
CREATE INDEX IF NOT EXISTS devices_resident ON gateway.devices (resident_id) WHERE revoked_at IS NULL;
-- Beds that may fall silent: scanned by the liveness sweep.
CREATE INDEX IF NOT EXISTS devices_online_beds ON gateway.devices (last_seen)
    WHERE state = 'online' AND kind = 'bed' AND revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS devices_unannounced ON gateway.devices (state_changed_at)
    WHERE state <> 'never_seen' AND state IS DISTINCT FROM announced_state;

-- (device, event_id) of every event received, so a redelivery is forwarded once, across restarts.
CREATE TABLE IF NOT EXISTS gateway.seen_events (
    device_id    text NOT NULL REFERENCES gateway.devices (id),
    event_id     text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    forwarded    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (device_id, event_id)
);
CREATE INDEX IF NOT EXISTS seen_events_received ON gateway.seen_events (received_at);

CREATE TABLE IF NOT EXISTS gateway.commands (
    command_id   text PRIMARY KEY,
    device_id    text NOT NULL REFERENCES gateway.devices (id),
    type         text NOT NULL,
    payload      jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'sent', 'acknowledged', 'expired')),
    -- The last state published on the internal command-state topic (see devices.announced_state).
    announced    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    acked_at     timestamptz,
    deadline_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_device ON gateway.commands (device_id, created_at);
CREATE INDEX IF NOT EXISTS commands_pending ON gateway.commands (deadline_at)
    WHERE state IN ('queued', 'sent');
CREATE INDEX IF NOT EXISTS commands_unannounced ON gateway.commands (updated_at)
    WHERE state <> 'queued' AND state IS DISTINCT FROM announced;

-- Rejected device messages per device and reason code. No foreign key: messages from ids that
-- were never provisioned are counted too (an anonymous broker lets them in).
CREATE TABLE IF NOT EXISTS gateway.rejections (
    device_id    text NOT NULL,
    code         text NOT NULL,
    count        bigint NOT NULL DEFAULT 0,
    last_reason  text NOT NULL,
    last_at      timestamptz NOT NULL,
    PRIMARY KEY (device_id, code)
);
