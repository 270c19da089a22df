-- Commands to devices live in one place, here: the outbox row is the command. Dispatch publishes
-- it straight to the device's `commands` topic on the device's broker shard (no relay through
-- the gateway), holds it while the device has never connected (no broker session would keep it),
-- expires it at its deadline, and records the device's ack, which comes back through the log.
ALTER TABLE dispatch.outbox ADD COLUMN IF NOT EXISTS device_id text;
ALTER TABLE dispatch.outbox ADD COLUMN IF NOT EXISTS deadline_at timestamptz;
ALTER TABLE dispatch.outbox ADD COLUMN IF NOT EXISTS acked_at timestamptz;  -- the device's own ts

-- Rows written before: a CommandOrder {device_id, command, deadline_s} for the gateway. They become
-- the command itself on the device's topic; the gateway no longer takes orders, so one whose
-- delivery was not confirmed is published again by dispatch (shown twice, it shows the same).
UPDATE dispatch.outbox
   SET device_id = payload ->> 'device_id',
       topic = 'homecare/v1/devices/' || (payload ->> 'device_id') || '/commands',
       deadline_at = created_at + make_interval(secs => coalesce((payload ->> 'deadline_s')::int, 600)),
       sent_at = CASE WHEN delivery IS NULL THEN NULL ELSE sent_at END,
       payload = payload -> 'command'
 WHERE topic = 'homecare/internal/v1/commands' AND payload ? 'command';
UPDATE dispatch.outbox SET deadline_at = created_at + interval '10 minutes' WHERE deadline_at IS NULL;
ALTER TABLE dispatch.outbox ALTER COLUMN deadline_at SET NOT NULL;

CREATE UNIQUE INDEX IF NOT EXISTS outbox_command_unique ON dispatch.outbox (command_id)
    WHERE command_id IS NOT NULL;
DROP INDEX IF EXISTS dispatch.outbox_command;
CREATE INDEX IF NOT EXISTS outbox_device ON dispatch.outbox (device_id, created_at DESC);
CREATE INDEX IF NOT EXISTS outbox_open ON dispatch.outbox (deadline_at)
    WHERE delivery IS NULL OR delivery = 'sent';
-- What the publisher reads: not yet taken by a broker and still to go (an expired command, never
-- published, is not).
DROP INDEX IF EXISTS dispatch.outbox_unsent;
CREATE INDEX IF NOT EXISTS outbox_to_publish ON dispatch.outbox (id) WHERE sent_at IS NULL AND delivery IS NULL;

-- What dispatch knows of each device's connection, from the device states in the log: which
-- broker shard it uses, and whether it ever connected (then its persistent session keeps what
-- is published while it is away).
CREATE TABLE IF NOT EXISTS dispatch.devices (
    device_id        text PRIMARY KEY,
    shard            text NOT NULL,
    state            text NOT NULL,
    first_seen_at    timestamptz NOT NULL,
    state_at         timestamptz NOT NULL
);

-- A deployment upgraded in place: the devices the gateway has seen are known to have sessions.
DO $$
BEGIN
    IF to_regclass('gateway.devices') IS NOT NULL THEN
        EXECUTE format(
            'INSERT INTO dispatch.devices (device_id, shard, state, first_seen_at, state_at)'
            ' SELECT id, %s, state, coalesce(last_seen, state_changed_at), state_changed_at'
            ' FROM gateway.devices WHERE state <> %L AND revoked_at IS NULL'
            ' ON CONFLICT (device_id) DO NOTHING',
            CASE WHEN EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'gateway'
                              AND table_name = 'devices' AND column_name = 'shard')
                 THEN 'shard' ELSE quote_literal('main') END,
            'never_seen');
    END IF;
END $$;
