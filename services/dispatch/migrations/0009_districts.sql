-- District service centres (issue 16): the districts a provider serves (the residents' district
-- names). Empty means not yet placed: such a provider serves every district, as every provider
-- did before districts, so an existing network keeps working until its providers are placed.
-- Matching offers a request to the providers of its district first (placed there, or not yet
-- placed), and to those of other districts only when none of them is eligible (cross-district
-- help, domain/districts.py).
ALTER TABLE dispatch.providers ADD COLUMN IF NOT EXISTS districts text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS providers_districts ON dispatch.providers USING gin (districts);
