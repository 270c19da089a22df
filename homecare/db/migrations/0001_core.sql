-- Core schemas shared by every component: residents (the directory) and accounts.
CREATE SCHEMA IF NOT EXISTS registry;

CREATE TABLE IF NOT EXISTS registry.residents (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    address     text NOT NULL,
    district    text NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    notes       text,
    contacts    jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS residents_district ON registry.residents (district);
CREATE INDEX IF NOT EXISTS residents_name ON registry.residents (lower(name));

CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE IF NOT EXISTS auth.users (
    username       text PRIMARY KEY,
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'dispatcher', 'provider')),
    provider_id    text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);

-- Bearer tokens and console sessions; only a hash of the token is kept.
CREATE TABLE IF NOT EXISTS auth.tokens (
    token_hash  text PRIMARY KEY,
    username    text NOT NULL REFERENCES auth.users (username) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_expiry ON auth.tokens (expires_at);
