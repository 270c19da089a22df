-- Care plans and day planning (issue 16): a resident's recurring visits, the routes the day
-- planner makes of them, and the planned visits released as requests into the one lifecycle.

-- A resident's recurring visits (domain/plans.py: CarePlan, Recurrence). Times of day are local
-- to the service centre (HOMECARE_DISPATCH_PLAN_TIMEZONE); the window is when a visit starts.
CREATE TABLE IF NOT EXISTS dispatch.care_plans (
    id                     text PRIMARY KEY,
    resident_id            text NOT NULL,
    service                text NOT NULL CHECK (service IN ('meal', 'bathing', 'escort', 'mobility')),
    repeat                 text NOT NULL CHECK (repeat IN ('daily', 'weekdays', 'every_n_weeks', 'once')),
    starts_on              date NOT NULL,
    ends_on                date CHECK (ends_on IS NULL OR ends_on >= starts_on),
    weekdays               smallint[] NOT NULL DEFAULT '{}',
    every_weeks            smallint NOT NULL DEFAULT 1 CHECK (every_weeks BETWEEN 1 AND 52),
    window_start           time NOT NULL,
    window_end             time NOT NULL CHECK (window_end > window_start),
    duration_minutes       int NOT NULL CHECK (duration_minutes BETWEEN 1 AND 480),
    skills                 text[] NOT NULL DEFAULT '{}',
    preferred_provider_id  text REFERENCES dispatch.providers (id) ON DELETE SET NULL,
    note                   text,
    active                 boolean NOT NULL DEFAULT true,
    created_at             timestamptz NOT NULL DEFAULT clock_timestamp(),  -- orders plans made in one transaction
    updated_at             timestamptz NOT NULL DEFAULT now(),
    ended_at               timestamptz
);
CREATE INDEX IF NOT EXISTS care_plans_resident ON dispatch.care_plans (resident_id, created_at);
CREATE INDEX IF NOT EXISTS care_plans_active ON dispatch.care_plans (starts_on) WHERE active;

-- What a provider can do beyond its services (a hoist, a language): plans ask for skills.
ALTER TABLE dispatch.providers ADD COLUMN IF NOT EXISTS skills text[] NOT NULL DEFAULT '{}';

-- One row per visit a plan asks for on a day ("plan_id:YYYY-MM-DD"), whatever replans it: on a
-- route (provider_id, seq, planned times) or unplanned (the reason), and once released the
-- request that carries it through the lifecycle.
CREATE TABLE IF NOT EXISTS dispatch.planned_visits (
    key               text PRIMARY KEY,
    plan_id           text NOT NULL REFERENCES dispatch.care_plans (id) ON DELETE CASCADE,
    day               date NOT NULL,
    resident_id       text NOT NULL,
    service           text NOT NULL,
    district          text,  -- the resident's home, when planned
    lat               double precision,
    lon               double precision,
    provider_id       text REFERENCES dispatch.providers (id) ON DELETE SET NULL,
    seq               int,  -- place on the provider's route, 0 first
    planned_arrival   timestamptz,
    planned_start     timestamptz,
    earliest          timestamptz NOT NULL,  -- the window, UTC
    latest            timestamptz NOT NULL,
    duration          int NOT NULL,  -- minutes
    travel_minutes    double precision,  -- from the stop before
    request_id        text REFERENCES dispatch.requests (id) ON DELETE SET NULL,
    released_at       timestamptz,
    unplanned_reason  text,
    planned_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((provider_id IS NULL) = (seq IS NULL))
);
CREATE INDEX IF NOT EXISTS planned_visits_day ON dispatch.planned_visits (day, provider_id, seq);
-- A provider's route not yet released, as matching reads it.
CREATE INDEX IF NOT EXISTS planned_visits_route ON dispatch.planned_visits (provider_id, latest)
    WHERE released_at IS NULL;
-- The timer's release claim: routed visits not yet released, by window.
CREATE INDEX IF NOT EXISTS planned_visits_to_release ON dispatch.planned_visits (earliest)
    WHERE released_at IS NULL AND provider_id IS NOT NULL;

-- Every planning run of a day: what the solver found, for the console and the record.
CREATE TABLE IF NOT EXISTS dispatch.plan_runs (
    id              text PRIMARY KEY,
    day             date NOT NULL,
    ran_at          timestamptz NOT NULL,
    actor           text NOT NULL,
    solver          text NOT NULL,
    visits          int NOT NULL,
    planned         int NOT NULL,
    unplanned       int NOT NULL,
    kept            int NOT NULL,  -- visits already released, left as they were
    workers         int NOT NULL,
    travel_minutes  double precision NOT NULL,
    bound_minutes   double precision,
    seconds         double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS plan_runs_day ON dispatch.plan_runs (day, ran_at DESC);

-- Planned visits are requests too (source 'plan'), with their window and place on the route.
ALTER TABLE dispatch.requests DROP CONSTRAINT IF EXISTS requests_source_check;
ALTER TABLE dispatch.requests ADD CONSTRAINT requests_source_check
    CHECK (source IN ('button', 'phone', 'alert', 'plan'));
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS plan_visit_key text;
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS window_start timestamptz;
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS window_end timestamptz;
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS planned_start timestamptz;
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS planned_minutes int;  -- the visit's planned length
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS route_seq int;
ALTER TABLE dispatch.requests ADD COLUMN IF NOT EXISTS plan_missed_at timestamptz;  -- window over, nobody there
CREATE UNIQUE INDEX IF NOT EXISTS requests_plan_visit ON dispatch.requests (plan_visit_key)
    WHERE plan_visit_key IS NOT NULL;
-- The timer's late / missed claim over released planned visits not yet arrived.
CREATE INDEX IF NOT EXISTS requests_plan_window ON dispatch.requests (window_end)
    WHERE source = 'plan' AND status IN ('assigned', 'en_route', 'open', 'offered', 'escalated');
