-- The newest sample of each bed, kept current by ingest in the same transaction as the samples,
-- so the console's "state of every bed" is one index lookup per device, whatever the history.
CREATE TABLE IF NOT EXISTS telemetry.latest_samples (
    device_id         text        PRIMARY KEY,
    ts                timestamptz NOT NULL,
    resident_id       text        NOT NULL,
    occupied          boolean     NOT NULL,
    heart_rate        smallint,
    respiration_rate  smallint,
    movement          real        NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
