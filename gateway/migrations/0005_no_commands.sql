-- Commands to devices live in one place: dispatch's outbox publishes each command straight to
-- the device's `commands` topic on its broker shard and records its delivery (services/dispatch,
-- migration 0003). The gateway's copy of the command state goes.
DROP TABLE IF EXISTS gateway.commands;
