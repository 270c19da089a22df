-- An exit at night during a provider's visit is judged from the end of the visit: when the
-- provider was found gone with the resident still out of bed (domain/rules/bed_exit.py).
ALTER TABLE telemetry.bed_presence ADD COLUMN IF NOT EXISTS visit_ended_at timestamptz;
