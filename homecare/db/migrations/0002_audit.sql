-- The audit log: what admins did (accounts, lockouts lifted, devices, providers) and the sign-in
-- lockouts themselves, with who, what, on what and when. Rows are only ever added.
CREATE TABLE IF NOT EXISTS auth.audit (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL,
    detail  jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_at ON auth.audit (at);
