-- A care plan's pauses: days on which it asks for no visit (the resident in hospital, away with
-- family), each with its reason and who set it. Kept with the plan (a planning run reads them
-- with it, and a change to them is a change to the plan), as [{id, from_day, to_day, reason, actor}].
ALTER TABLE dispatch.care_plans ADD COLUMN IF NOT EXISTS pauses jsonb NOT NULL DEFAULT '[]';
