-- Broker shards: each device is on one broker of the city for life (homecare/shards.py).
-- Devices stored before there were shards are on the broker the deployment had: the first shard
-- of HOMECARE_MQTT_SHARDS when the migration runs (the migrator sets homecare.first_shard),
-- `main` when none is configured, the name of the one broker of HOMECARE_MQTT_URL. ADD COLUMN
-- with a default writes no row; the default then stays `main` for inserts that name no shard.
DO $$
DECLARE
    first_shard text := coalesce(nullif(current_setting('homecare.first_shard', true), ''), 'main');
BEGIN
    EXECUTE format(
        'ALTER TABLE gateway.devices ADD COLUMN IF NOT EXISTS shard text NOT NULL DEFAULT %L',
        first_shard);
    ALTER TABLE gateway.devices ALTER COLUMN shard SET DEFAULT 'main';
END $$;
-- Placement counts active devices per shard; a gateway's sweeps look at its shard's devices.
CREATE INDEX IF NOT EXISTS devices_shard ON gateway.devices (shard) WHERE revoked_at IS NULL;
