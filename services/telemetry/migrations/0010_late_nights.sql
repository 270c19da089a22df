-- A night whose samples arrived after it was evaluated is evaluated again (usecases/nightly.py).
ALTER TABLE telemetry.night_summaries ADD COLUMN IF NOT EXISTS stale boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS night_summaries_stale ON telemetry.night_summaries (night) WHERE stale;
