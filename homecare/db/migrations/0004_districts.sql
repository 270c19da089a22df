-- District service centres (issue 16): an account belongs to districts (the residents'
-- `registry.residents.district` names). A dispatcher sees only its districts' residents, devices,
-- requests, alerts and providers; one with none sees nothing. Admins and the city bureau (role
-- `city`) see every district whatever is stored here.
ALTER TABLE auth.users ADD COLUMN IF NOT EXISTS districts text[] NOT NULL DEFAULT '{}';
ALTER TABLE auth.users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE auth.users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin', 'city', 'dispatcher', 'provider'));
