-- Operational incidents of the platform itself, for the people on shift: each time a consumer of
-- the internal log got stuck (its oldest unacknowledged message older than its limit), when, for
-- how long and how badly. The console records them; one open incident per consumer, however many
-- console replicas notice it.
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE IF NOT EXISTS ops.consumer_incidents (
    id             bigserial PRIMARY KEY,
    namespace      text NOT NULL,              -- the log's (HOMECARE_LOG_NAMESPACE)
    consumer       text NOT NULL,              -- the durable consumer, as in metrics and dead letters
    title          text NOT NULL,              -- what it carries ("Button presses")
    stuck_after_s  double precision NOT NULL,  -- its limit
    raised_at      timestamptz NOT NULL,       -- when its oldest waiting message passed the limit
    noticed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    peak_age_s     double precision NOT NULL,  -- the oldest waiting message, at worst
    peak_lag       bigint NOT NULL,            -- messages not yet delivered, at worst
    cleared_at     timestamptz                 -- NULL while stuck
);
CREATE UNIQUE INDEX IF NOT EXISTS consumer_incidents_open
    ON ops.consumer_incidents (namespace, consumer) WHERE cleared_at IS NULL;
CREATE INDEX IF NOT EXISTS consumer_incidents_recent ON ops.consumer_incidents (namespace, id);
